#!/bin/bash
# Fetch one Ganeti release's node code (a Debian "Architecture: all" package such as trixie's
# ganeti-3.1) into a cache, for test/ganeti/harness.py: downloaded by apt with a private
# configuration (its own Dir::Etc, Dir::State, Dir::Cache and one signed source: the host's apt
# sources, state and dpkg database are never touched) and unpacked with dpkg-deb -x, never
# installed. Works for root and for an ordinary user who can write CACHE.
#
#   fetch-ganeti-code.sh CACHE PACKAGE SUITE MIRROR
#
# Prints the unpacked tree, CACHE/PACKAGE_VERSION (its code under usr/share/ganeti/<release>),
# on stdout. A tree already there is reused (keyed by the package version): nothing is
# downloaded. Concurrent callers wait for each other (flock on CACHE/.lock). On failure: the
# cause on stderr, exit 1, nothing left behind but the lock file.
set -euo pipefail

if [ "$#" -ne 4 ] || [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  echo "usage: $0 CACHE PACKAGE SUITE MIRROR" >&2
  exit 2
fi
cache=$1 package=$2 suite=$3 mirror=$4
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

fail() {
  echo "$*" >&2
  exit 1
}

for cmd in apt-get dpkg-deb flock; do
  command -v "$cmd" >/dev/null || fail "command $cmd not found"
done
[ -r "$keyring" ] || fail "$keyring not found (Debian package debian-archive-keyring)"
mkdir -p "$cache" || fail "cannot create $cache"

# A tree unpacked before (by this or another caller); of several, the last in name order.
present() {
  local d found=
  for d in "$cache/${package}_"*/; do
    [ -d "$d" ] && found=${d%/}
  done
  [ -n "$found" ] && printf '%s\n' "$found"
}

if present; then exit 0; fi
exec 9>>"$cache/.lock"
flock --timeout 900 9 || fail "another fetch into $cache held its lock for 15 minutes"
if present; then exit 0; fi

work=$(mktemp -d "$cache/.fetch-XXXXXX")
trap 'rm -rf -- "$work"' EXIT
mkdir -p "$work/etc/apt/apt.conf.d" "$work/etc/apt/preferences.d" "$work/etc/apt/sources.list.d" \
  "$work/etc/apt/trusted.gpg.d" "$work/state/lists/partial" "$work/cache/archives/partial"
: >"$work/state/status"
echo "deb [signed-by=$keyring] $mirror $suite main" >"$work/etc/apt/sources.list"
apt_opts=(
  -o "Dir::Etc=$work/etc/apt" -o "Dir::State=$work/state" -o "Dir::Cache=$work/cache"
  -o "Dir::State::status=$work/state/status" -o Acquire::Retries=2 -o Acquire::http::Timeout=30
)
# As root apt would hand the download to its _apt user, which cannot write into this private
# directory (it warns and goes on as root): say so from the start.
if [ "$(id -u)" = 0 ]; then apt_opts+=(-o APT::Sandbox::User=root); fi

# run WHAT COMMAND...: on failure, WHAT and apt's own error lines.
out=
run() {
  local what=$1
  shift
  if ! out=$(cd "$work" && LC_ALL=C "$@" 2>&1); then
    fail "$what failed: $(errors)"
  fi
}
errors() { printf '%s\n' "$out" | grep -E '^(E|W|Err:?[0-9]*):' | tail -n 3 | tr -s ' \n' ' '; }
run "apt-get update ($mirror $suite)" apt-get "${apt_opts[@]}" -q update
# apt-get update goes on (exit 0) when an index cannot be fetched: no index, no package.
if ! compgen -G "$work/state/lists/*_Packages*" >/dev/null; then
  fail "apt-get update ($mirror $suite) fetched no package index: $(errors)"
fi
run "apt-get download $package" apt-get "${apt_opts[@]}" -q download "$package"

deb=$(find "$work" -maxdepth 1 -name "${package}_*.deb" -print -quit)
[ -n "$deb" ] || fail "apt-get download $package left no .deb"
version=$(dpkg-deb --field "$deb" Version) || fail "$deb: not a Debian package"
dpkg-deb -x "$deb" "$work/root" || fail "dpkg-deb -x $deb failed"
# The rename is the commit: a tree in the cache is always whole.
mv -T "$work/root" "$cache/${package}_$version" || fail "cannot move the unpacked tree into $cache"
printf '%s\n' "$cache/${package}_$version"
