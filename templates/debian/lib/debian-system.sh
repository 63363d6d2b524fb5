# shellcheck shell=bash
# The base system of the 'debian' template: mirror and proxy (read from the node's apt
# configuration at run time, because Ganeti clears the environment), the installer
# (mmdebstrap, else debootstrap) and the shared, locked, atomically written cache of base-system
# tarballs. Sourced by lib/steps.sh.

# Bump when what goes into a cached tarball changes, so old entries are not reused.
# 2: entries no longer keep the node's proxy, resolv.conf, hostname or mirror credentials.
DEB_CACHE_FORMAT=2
# Where the node's apt configuration lives (a test may point it elsewhere).
DEB_APT_ETC=${DEB_APT_ETC:-/etc/apt}

# deb_settings: every setting with its default and its form checked (gos_settings, from the
# template's settings table in lib/settings.sh), then what is worked out on the node.
deb_settings() {
  gos_settings
  COMPONENTS=${COMPONENTS//,/ }
  EXTRA_PKGS=${EXTRA_PKGS//,/ }
  if [[ $DPKG_SYNC == auto ]]; then
    DPKG_SYNC=unsafe
    if [[ -d /usr/share/mmdebstrap/hooks/eatmydata ]] && command -v dpkg-architecture >/dev/null; then DPKG_SYNC=eatmydata; fi
  fi
  if [[ -z $ARCH ]]; then
    ARCH=$(dpkg --print-architecture 2>/dev/null) || gos_die "ARCH is not set and dpkg cannot tell this node's architecture"
  fi
}

# deb_fault STEP: fail here when the (test-only) setting FAULT_AT names this step. Ganeti clears
# the environment, so FAULT_AT comes from a configuration layer, like every other setting.
deb_fault() {
  if [[ -n ${FAULT_AT-} && $FAULT_AT == "$1" ]]; then
    gos_die "injected failure at step '$1' (FAULT_AT)"
  fi
  gos_debug "step $1"
}

# --- mirror and proxy -----------------------------------------------------------------------

# deb_node_mirror: the node's main archive URL from its apt sources (one-line *.list files and
# deb822 *.sources files): the first 'deb' source whose suite is not a security, updates,
# backports or proposed pocket.
deb_node_mirror() {
  local f line uri suite types uris suites enabled
  local -a words
  for f in "$DEB_APT_ETC/sources.list" "$DEB_APT_ETC"/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    while IFS= read -r line || [[ -n $line ]]; do
      line=${line%%#*}
      read -r -a words <<<"$line"
      ((${#words[@]} >= 3)) || continue
      [[ ${words[0]} == deb ]] || continue
      if [[ ${words[1]} == \[* ]]; then
        # Options in brackets: skip to the word closing them.
        while ((${#words[@]} > 1)) && [[ ${words[1]} != *']' ]]; do words=("${words[0]}" "${words[@]:2}"); done
        words=("${words[0]}" "${words[@]:2}")
      fi
      uri=${words[1]-} suite=${words[2]-}
      if deb_is_main_suite "$suite" && [[ $uri =~ ^(https?|ftp|file):// ]]; then
        printf '%s\n' "$uri"
        return 0
      fi
    done <"$f"
  done
  for f in "$DEB_APT_ETC"/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    types='' uris='' suites='' enabled=yes
    while IFS= read -r line || [[ -n $line ]]; do
      if [[ -z ${line//[[:space:]]/} ]]; then
        if uri=$(deb_stanza_mirror "$types" "$uris" "$suites" "$enabled"); then
          printf '%s\n' "$uri"
          return 0
        fi
        types='' uris='' suites='' enabled=yes
        continue
      fi
      if [[ $line == \#* ]]; then continue; fi
      case ${line,,} in
        types:*) types=${line#*:} ;;
        uris:*) uris=${line#*:} ;;
        suites:*) suites=${line#*:} ;;
        enabled:*) enabled=${line#*:} enabled=${enabled//[[:space:]]/} ;;
      esac
    done <"$f"
    if uri=$(deb_stanza_mirror "$types" "$uris" "$suites" "$enabled"); then
      printf '%s\n' "$uri"
      return 0
    fi
  done
  return 1
}

deb_stanza_mirror() {
  local types=$1 uris=$2 suites=$3 enabled=$4 t s u
  if [[ ${enabled,,} == no ]]; then return 1; fi
  for t in $types; do
    [[ $t == deb ]] || continue
    for s in $suites; do
      deb_is_main_suite "$s" || continue
      for u in $uris; do
        if [[ $u =~ ^(https?|ftp|file):// ]]; then
          printf '%s\n' "$u"
          return 0
        fi
      done
    done
  done
  return 1
}

deb_is_main_suite() {
  [[ -n $1 && $1 != */* && $1 != *-security && $1 != *-updates && $1 != *-backports* && $1 != *-proposed* && $1 != *-proposed-updates ]]
}

# deb_node_security_mirror: the node's security archive URL (Debian only), if it has one.
deb_node_security_mirror() {
  local f u
  for f in "$DEB_APT_ETC/sources.list" "$DEB_APT_ETC"/sources.list.d/*.list "$DEB_APT_ETC"/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    u=$(sed -e 's/#.*//' -- "$f" | grep -Eo '(https?|ftp)://[^][ ]*debian-security[^][ ]*' | sed -n 1p || true)
    if [[ -n $u ]]; then
      printf '%s\n' "$u"
      return 0
    fi
  done
  return 1
}

# deb_resolve_mirror: MIRROR from the configuration, else the node's own (then
# DEB_MIRROR_FROM_NODE=yes, read when writing the instance's apt sources).
deb_resolve_mirror() {
  # shellcheck disable=SC2034
  DEB_MIRROR_FROM_NODE=no
  if [[ -z $MIRROR ]]; then
    MIRROR=$(deb_node_mirror) ||
      gos_die "no MIRROR is configured and none was found in this node's apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d/): set MIRROR in variants/${GOS_VARIANT:-<variant>}.conf or /etc/ganeti/$GOS_OS_NAME/site.conf"
    # shellcheck disable=SC2034
    DEB_MIRROR_FROM_NODE=yes
  fi
  MIRROR=${MIRROR%/}
  gos_debug "mirror $(deb_public_url "$MIRROR")"
}

# deb_resolve_proxy: PROXY from the configuration, else apt's own proxy setting on this node.
# The proxy serves the install only: it reaches the installer through the environment and
# mmdebstrap's --aptopt, and deb_scrub_node_settings removes it from the installed tree.
deb_resolve_proxy() {
  if [[ -z $PROXY ]] && command -v apt-config >/dev/null; then
    local line
    line=$(apt-config dump Acquire::http::Proxy 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n 1)
    if [[ $line == DIRECT || $line == false ]]; then line=''; fi
    PROXY=$line
  fi
  if [[ -n $PROXY ]]; then
    export http_proxy=$PROXY https_proxy=$PROXY ftp_proxy=$PROXY
    gos_log "downloading through the proxy $(deb_public_url "$PROXY") (for the install only: instances do not keep it)"
  fi
}

# deb_public_url URL: URL without the user name and password it may carry (user:secret@host):
# the node's credentials stay on the node, out of instances and logs.
deb_public_url() {
  printf '%s' "$1" | sed -E 's#^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@#\1#'
}

# deb_installer_output CMD...: run an installer (mmdebstrap, debootstrap) with its output (both
# streams) on stderr, the log, less the user names and passwords of URLs in it (its hooks print
# the mirror URL they fetch from); also into the file DEB_INSTALLER_LOG when it is set. Exits
# with the installer's status.
deb_installer_output() {
  local -
  set -o pipefail
  "$@" </dev/null 2>&1 | sed -u -E 's#([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@[:space:]]*@#\1#g' |
    tee -a -- "${DEB_INSTALLER_LOG:-/dev/null}" >&2
}

# deb_scrub_node_settings ROOT: remove from an installed tree what belongs to the node that
# installed it, not to the instance: the proxy (mmdebstrap's --aptopt file, any
# Acquire::*::Proxy setting), the node's /etc/resolv.conf and /etc/hostname (mmdebstrap and
# debootstrap copy them in so that the install can resolve names; systemd-resolved keeps a backup
# of the first), the installer's log (it names the mirror) and credentials in apt's sources. Run
# on every new base system before it is cached, and again on each instance (older caches).
deb_scrub_node_settings() {
  local root=$1 f
  rm -f -- "$root/etc/apt/apt.conf.d/99mmdebstrap" "$root/etc/dpkg/dpkg.cfg.d/99mmdebstrap" \
    "$root/etc/.resolv.conf.systemd-resolved.bak" "$root/var/log/bootstrap.log" "$root/etc/hostname"
  # A symlink (systemd-resolved's stub) belongs to the instance; a plain file is the node's copy.
  if [[ -f $root/etc/resolv.conf && ! -L $root/etc/resolv.conf ]]; then rm -f -- "$root/etc/resolv.conf"; fi
  for f in "$root/etc/apt/apt.conf" "$root"/etc/apt/apt.conf.d/*; do
    if [[ -f $f && ! -L $f ]] && grep -qi 'proxy' -- "$f"; then
      sed -i -e '/[Pp][Rr][Oo][Xx][Yy]/d' -- "$f"
      if [[ ! -s $f ]]; then rm -f -- "$f"; fi
    fi
  done
  for f in "$root/etc/apt/sources.list" "$root"/etc/apt/sources.list.d/*.list "$root"/etc/apt/sources.list.d/*.sources; do
    if [[ -f $f && ! -L $f ]] && grep -Eq '://[^/@[:space:]]*@' -- "$f"; then
      sed -i -E 's#([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@[:space:]]*@#\1#g' -- "$f"
    fi
  done
  rm -f -- "$root"/etc/apt/auth.conf "$root"/etc/apt/auth.conf.d/*
}

# deb_is_ubuntu: does the variant install Ubuntu (by mirror or well-known codename)?
deb_is_ubuntu() {
  if [[ $MIRROR == *ubuntu* ]]; then return 0; fi
  # shellcheck disable=SC2153 # SUITE is a setting: lib/settings.sh assigns it
  case $SUITE in
    trusty | xenial | bionic | focal | jammy | kinetic | lunar | mantic | noble | oracular | plucky | questing) return 0 ;;
  esac
  return 1
}

# deb_kernel_packages: what a kernel install means for this release and architecture.
deb_kernel_packages() {
  if [[ -n $KERNEL_PACKAGES ]]; then
    printf '%s grub-pc\n' "$KERNEL_PACKAGES"
  elif deb_is_ubuntu; then
    printf 'linux-image-virtual grub-pc\n'
  else
    case $ARCH in
      amd64 | arm64) printf 'linux-image-cloud-%s grub-pc\n' "$ARCH" ;;
      i386) printf 'linux-image-686-pae grub-pc\n' ;;
      *) printf 'linux-image-%s\n' "$ARCH" ;;
    esac
  fi
}

# --- installing into a tarball --------------------------------------------------------------

deb_installer() {
  case $INSTALLER in
    auto)
      if command -v mmdebstrap >/dev/null; then echo mmdebstrap
      elif command -v debootstrap >/dev/null; then echo debootstrap
      else gos_die "neither mmdebstrap nor debootstrap is installed on this node (apt-get install mmdebstrap)"
      fi
      ;;
    mmdebstrap | debootstrap)
      command -v "$INSTALLER" >/dev/null || gos_die "INSTALLER is $INSTALLER but it is not installed on this node"
      echo "$INSTALLER"
      ;;
    *) gos_die "INSTALLER must be auto, mmdebstrap or debootstrap, not '$INSTALLER'" ;;
  esac
}

# deb_mmdebstrap_speed VAR: mmdebstrap options (appended to the array VAR) that make a build
# faster without changing what it installs:
# - dpkg without fsync (--force-unsafe-io, or eatmydata when the node has dpkg-architecture for
#   mmdebstrap's eatmydata hook): the tree is packed into the tarball once, at the end, and a
#   crashed build is thrown away, so the syncs protect nothing;
# - one package download cache for every base system of this architecture (all suites, all
#   package sets), $CACHE_DIR/packages/$ARCH: packages already there are hard-linked into the
#   build (copied when it is in a tmpfs; apt does not fetch them again), new downloads are linked
#   or copied back before mmdebstrap's cleanup, and nothing of it goes into the tarball. Entries
#   age out with the cache.
deb_mmdebstrap_speed() {
  local -n _args=$1
  local pool
  case $DPKG_SYNC in
    eatmydata) _args+=(--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata) ;;
    unsafe) _args+=(--dpkgopt=force-unsafe-io) ;;
  esac
  [[ $GENERATE_CACHE == yes ]] || return 0
  pool=$CACHE_DIR/packages/$ARCH
  mkdir -p -- "$pool" 2>/dev/null || return 0
  find "$pool" -maxdepth 1 -name '*.deb' -type f -mtime "+$((CACHE_MAX_AGE_DAYS - 1))" -delete 2>/dev/null || true
  # The hooks run in mmdebstrap's shell (which inherits this environment), with the chroot as $1.
  export DEB_PACKAGE_POOL=$pool
  # shellcheck disable=SC2016
  _args+=(--skip=essential/unlink
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives && for d in "$DEB_PACKAGE_POOL"/*.deb; do [ -f "$d" ] || continue; ln "$d" "$1"/var/cache/apt/archives/ 2>/dev/null || cp "$d" "$1"/var/cache/apt/archives/; done'
    --customize-hook='for d in "$1"/var/cache/apt/archives/*.deb; do [ -f "$d" ] || continue; [ -e "$DEB_PACKAGE_POOL/${d##*/}" ] || ln "$d" "$DEB_PACKAGE_POOL/" 2>/dev/null || cp "$d" "$DEB_PACKAGE_POOL/" || true; rm -f "$d"; done')
}

# deb_build_area DIR: mount a tmpfs on DIR (created) for the base system to be built in, when
# BUILD_TMPFS allows: auto when this node has at least 4 GiB of memory available (the tmpfs may
# then grow to half of it; a base system takes 250-700 MiB, for about a minute), or a size in
# MiB. dpkg writes tens of thousands of files: in memory a build takes about two thirds of the
# time it takes on a disk's filesystem (bench/RESULTS.md), and the tree is packed into the cache
# at the end anyway. Released at exit (a build never leaves a mount behind). Returns 1, with
# nothing mounted, when no tmpfs is used (no, too little memory, or the mount was refused).
deb_build_area() {
  local dir=$1 mib avail_kib
  case $BUILD_TMPFS in
    no)
      gos_log "building the base system on disk in ${TMPDIR:-/tmp} (BUILD_TMPFS=no)"
      return 1
      ;;
    auto)
      avail_kib=$(sed -n 's/^MemAvailable: *\([0-9]*\) kB$/\1/p' /proc/meminfo 2>/dev/null)
      if [[ -z $avail_kib ]] || ((avail_kib < 4 * 1024 * 1024)); then
        gos_log "building the base system on disk in ${TMPDIR:-/tmp}: less than 4 GiB of memory available (BUILD_TMPFS=auto)"
        return 1
      fi
      mib=$((avail_kib / 2048))
      ;;
    *) mib=$BUILD_TMPFS ;;
  esac
  mkdir -p -- "$dir" || return 1
  if ! mount -t tmpfs -o "size=${mib}m,mode=0700" ganeti-os-build "$dir" 2>/dev/null; then
    gos_log "warning: could not mount a tmpfs to build the base system in; building in ${TMPDIR:-/tmp}"
    return 1
  fi
  gos_log "building the base system in memory (a tmpfs of at most $mib MiB; BUILD_TMPFS)"
}

# deb_build_area_full DIR LOG: did a build in the tmpfs on DIR fail for room? It is (nearly) full,
# or the installer's output LOG says so (apt deletes a download that did not fit).
deb_build_area_full() {
  local used
  used=$(df --output=pcent -- "$1" 2>/dev/null | sed -n '2s/[^0-9]//gp')
  [[ -n $used ]] && ((used >= 90)) && return 0
  grep -q 'No space left on device' -- "$2" 2>/dev/null
}

# deb_install_tree ROOT PACKAGES...: install the base system with PACKAGES into the directory
# ROOT (which must not exist yet) with mmdebstrap, else debootstrap; one attempt.
deb_install_tree() {
  local root=$1 tool list
  shift
  tool=$(deb_installer)
  list=$(printf '%s\n' "$@" | paste -sd, -)
  case $tool in
    mmdebstrap)
      # The hooks run in mmdebstrap's shell, with the chroot as $1. Not --quiet: its phase lines
      # (downloading, extracting, installing) go to the log, where run and test show them as progress.
      # shellcheck disable=SC2016
      local -a args=(--mode=root --format=directory --variant="$INSTALL_VARIANT" --architectures="$ARCH"
        --components="${COMPONENTS// /,}"
        --customize-hook='if [ -f "$1"/lib/systemd/system/systemd-networkd.service ]; then chroot "$1" systemctl enable systemd-networkd.service; fi')
      if [[ -n $list ]]; then args+=(--include="$list"); fi
      # Written into the tree's apt.conf.d/99mmdebstrap for the install; scrubbed below.
      if [[ -n $PROXY ]]; then args+=(--aptopt="Acquire::http::Proxy \"$PROXY\""); fi
      if [[ -n ${KEYRING-} ]]; then args+=(--keyring="$KEYRING"); fi
      # CHECK_VALID_UNTIL=no: in 99mmdebstrap (scrubbed below), so the instances keep apt's check.
      if [[ $CHECK_VALID_UNTIL == no ]]; then args+=(--aptopt='Acquire::Check-Valid-Until "false"'); fi
      deb_mmdebstrap_speed args
      deb_installer_output mmdebstrap "${args[@]}" "$SUITE" "$root" "$MIRROR" || return 1
      ;;
    debootstrap)
      # systemd-resolved's maintainer scripts break debootstrap's second stage (it replaces
      # /etc/resolv.conf): leave it out; networkd then cannot pass DHCP's name servers on.
      if [[ ,$list, == *,systemd-resolved,* ]]; then
        list=$(printf '%s\n' "$@" | grep -vx systemd-resolved | paste -sd, -)
        gos_log "warning: debootstrap cannot install systemd-resolved; instances will not use the name servers DHCP offers"
      fi
      local -a args=(--arch="$ARCH" --components="${COMPONENTS// /,}")
      if [[ -n $list ]]; then args+=(--include="$list"); fi
      if [[ $INSTALL_VARIANT == minbase ]]; then args+=(--variant=minbase); fi
      if [[ -n ${KEYRING-} ]]; then args+=(--keyring="$KEYRING"); fi
      deb_installer_output debootstrap "${args[@]}" "$SUITE" "$root" "$MIRROR" || return 1
      rm -f -- "$root"/var/cache/apt/archives/*.deb
      rm -rf -- "$root"/var/lib/apt/lists/*_Packages "$root/debootstrap"
      if [[ -f $root/lib/systemd/system/systemd-networkd.service ]]; then
        mkdir -p "$root/etc/systemd/system/multi-user.target.wants" "$root/etc/systemd/system/sockets.target.wants"
        ln -sf /lib/systemd/system/systemd-networkd.service "$root/etc/systemd/system/multi-user.target.wants/"
        ln -sf /lib/systemd/system/systemd-networkd.socket "$root/etc/systemd/system/sockets.target.wants/"
      fi
      ;;
  esac
}

# deb_build_tarball OUT PACKAGES...: install the base system into a directory (in memory when
# deb_build_area allows it; again on disk when it did not fit there), take out what belongs to
# this node (deb_scrub_node_settings) and the SSH host keys, and pack it as OUT. The tree stays
# until the script exits, its path in DEB_BUILT_TREE, so that deb_base_image need not unpack OUT.
deb_build_tarball() {
  local out=$1 list tmp root
  shift
  list=$(printf '%s\n' "$@" | paste -sd, -)
  gos_log "installing $SUITE ($ARCH) from $(deb_public_url "$MIRROR") with $(deb_installer)${list:+, with $list}"
  gos_mktemp_dir tmp
  # Whatever an interrupted installer leaves mounted in its chroot, and the tmpfs, go first.
  gos_push_cleanup gos_umount_under "$tmp"
  root=$tmp/root
  if deb_build_area "$tmp/ram"; then root=$tmp/ram/root; fi
  DEB_INSTALLER_LOG=$tmp/installer.log
  # Each retry changes one thing for good, so there are at most three attempts.
  until : >"$DEB_INSTALLER_LOG" && deb_install_tree "$root" "$@"; do
    if [[ $root == "$tmp/ram/root" ]] && deb_build_area_full "$tmp/ram" "$DEB_INSTALLER_LOG"; then
      gos_log "warning: the base system did not fit in the tmpfs; building it again on disk in ${TMPDIR:-/tmp} (BUILD_TMPFS: a larger size in MiB, or no)"
      gos_umount_under "$tmp/ram"
      root=$tmp/root
    elif [[ $(deb_installer) == mmdebstrap && $DPKG_SYNC == eatmydata ]]; then
      # The hook fetches eatmydata from the mirror itself: without it, dpkg's own option.
      gos_log "warning: the build with eatmydata failed; building again with dpkg --force-unsafe-io (set DPKG_SYNC=unsafe to skip eatmydata)"
      DPKG_SYNC=unsafe
      rm -rf --one-file-system -- "$root"
    else
      if grep -q 'Release file .* is expired' -- "$DEB_INSTALLER_LOG" 2>/dev/null; then
        gos_log "the archive's Release file for $SUITE has expired (a frozen mirror or a snapshot?): CHECK_VALID_UNTIL=no accepts it while the base system is built"
      fi
      return 1
    fi
  done
  rm -f -- "$root"/etc/ssh/ssh_host_*
  deb_scrub_node_settings "$root"
  DEB_INSTALLER_LOG=''
  tar --numeric-owner --xattrs --xattrs-include='*' --acls -C "$root" -cf "$out" . || return 1
  DEB_BUILT_TREE=$root
}

# deb_base_tarball VAR PACKAGES...: a tarball of the base system with PACKAGES, from the cache
# when a fresh one is there; its path in VAR. The cache is keyed by everything that changes the
# content, each key built by one create at a time (flock), written to a temporary file and
# renamed into place, and rebuilt once older than CACHE_MAX_AGE_DAYS.
deb_base_tarball() {
  local _var=$1 key name file tool tmp lockfd
  shift
  local -a pkgs=()
  mapfile -t pkgs < <(printf '%s\n' "$@" | sed '/^$/d' | sort -u)
  tool=$(deb_installer)
  if [[ $GENERATE_CACHE != yes ]]; then
    gos_mktemp_dir tmp
    deb_build_tarball "$tmp/base.tar" "${pkgs[@]}" || gos_die "the installation of the base system failed"
    printf -v "$_var" '%s' "$tmp/base.tar"
    return 0
  fi
  key=$(printf '%s\n' "format=$DEB_CACHE_FORMAT" "tool=$tool" "suite=$SUITE" "arch=$ARCH" \
    "components=$COMPONENTS" "variant=$INSTALL_VARIANT" "ubuntu=$(deb_is_ubuntu && echo yes || echo no)" "${pkgs[@]}" |
    sha256sum | cut -c1-16)
  name="$SUITE-$ARCH-$key"
  file=$CACHE_DIR/$name.tar
  mkdir -p -- "$CACHE_DIR" || gos_die "cannot create the cache directory $CACHE_DIR"
  # Age out every old entry (a create reading one keeps its open file).
  find "$CACHE_DIR" -maxdepth 1 \( -name '*.tar' -o -name '*.img' \) -type f -mtime "+$((CACHE_MAX_AGE_DAYS - 1))" -delete 2>/dev/null || true
  exec {lockfd}>"$CACHE_DIR/.$name.lock" || gos_die "cannot open the cache lock $CACHE_DIR/.$name.lock"
  if ! flock --exclusive --nonblock "$lockfd"; then
    gos_log "another create is building the $SUITE base system; waiting for it"
    flock --exclusive --timeout 3600 "$lockfd" || gos_die "timed out waiting for the cache lock $CACHE_DIR/.$name.lock"
  fi
  if [[ -f $file && -z $(find "$file" -mtime "+$((CACHE_MAX_AGE_DAYS - 1))" 2>/dev/null) ]]; then
    gos_log "using the cached base system $file"
  else
    tmp=$(mktemp --suffix=.tar "$CACHE_DIR/.$name.XXXXXX") || gos_die "cannot create a file in $CACHE_DIR"
    gos_push_cleanup rm -f -- "$tmp"
    deb_build_tarball "$tmp" "${pkgs[@]}" || gos_die "the installation of the base system failed (see the messages above)"
    chmod 0644 -- "$tmp"
    mv -f -- "$tmp" "$file" || gos_die "cannot move the new base system into the cache ($file)"
    DEB_BUILT_TAR=$file
    gos_log "cached the base system as $file"
  fi
  exec {lockfd}>&-
  printf -v "$_var" '%s' "$file"
}

# deb_base_image VAR TAR FSTYPE: a filesystem image (FSTYPE, label root) holding the cached base
# system TAR, from the cache when one newer than TAR is there; its path in VAR, or empty when
# there is no cache or the image cannot be made (mke2fs without -d: then create unpacks TAR).
# The image is as small as its files allow (create grows it to the partition with resize2fs);
# ext4 images have metadata_csum_seed, so that each instance's new UUID is a quick tune2fs -U.
# Built under its own lock, written to a temporary file and renamed into place, aged out with
# the tarballs. It holds no SSH host keys: the tarball has none.
deb_base_image() {
  local _var=$1 tar=$2 fstype=$3 file name lockfd tree tmp kib files mib
  local -a opts=()
  printf -v "$_var" '%s' ''
  [[ $GENERATE_CACHE == yes && $CACHE_IMAGES == yes && $fstype == ext[234] ]] || return 0
  command -v e2image >/dev/null && command -v resize2fs >/dev/null || return 0
  file=${tar%.tar}.$fstype.img
  name=${file##*/}
  exec {lockfd}>"$CACHE_DIR/.$name.lock" || gos_die "cannot open the cache lock $CACHE_DIR/.$name.lock"
  if ! flock --exclusive --nonblock "$lockfd"; then
    gos_log "another create is building the $SUITE $fstype image; waiting for it"
    flock --exclusive --timeout 3600 "$lockfd" || gos_die "timed out waiting for the cache lock $CACHE_DIR/.$name.lock"
  fi
  if [[ -f $file && $file -nt $tar ]]; then
    gos_log "using the cached $fstype image $file"
  else
    tmp=$(mktemp "$CACHE_DIR/.$name.XXXXXX") || gos_die "cannot create a file in $CACHE_DIR"
    gos_push_cleanup rm -f -- "$tmp"
    if [[ -n ${DEB_BUILT_TREE-} && ${DEB_BUILT_TAR-} == "$tar" && -d $DEB_BUILT_TREE ]]; then
      # This create has just built TAR: its tree is still there (in memory, usually).
      tree=$DEB_BUILT_TREE
    else
      tree=$(mktemp -d "$CACHE_DIR/.$name.XXXXXX") || gos_die "cannot create a directory in $CACHE_DIR"
      gos_push_cleanup rm -rf --one-file-system -- "$tree"
      tar --numeric-owner --xattrs --xattrs-include='*' --acls -xpf "$tar" -C "$tree" ||
        gos_die "could not unpack the base system to make its $fstype image"
    fi
    # Room for the files, their inodes (one per 16 KiB, as mke2fs gives a disk) and the journal.
    kib=$(du -skx -- "$tree" | cut -f1)
    files=$(find "$tree" -xdev | wc -l)
    mib=$(((kib * 12 / 10 + 65536) / 1024))
    if ((files * 16 * 12 / 10 / 1024 > mib)); then mib=$((files * 16 * 12 / 10 / 1024)); fi
    mib=$(((mib + 3) / 4 * 4))
    if [[ $fstype == ext4 ]]; then opts=(-O metadata_csum_seed); fi
    if truncate -s "${mib}M" -- "$tmp" &&
      mke2fs -q -F -t "$fstype" -b 4096 -I 256 -i 16384 "${opts[@]}" -L root -d "$tree" -- "$tmp" >/dev/null 2>&1 &&
      e2fsck -fn -- "$tmp" >/dev/null 2>&1; then
      chmod 0644 -- "$tmp"
      mv -f -- "$tmp" "$file" || gos_die "cannot move the new $fstype image into the cache ($file)"
      gos_log "cached the base system as a $fstype image ($mib MiB): $file"
    else
      gos_log "warning: could not make a $fstype image of the base system (mke2fs -d); unpacking the tarball instead"
      file=''
    fi
    if [[ $tree != "${DEB_BUILT_TREE-}" ]]; then gos_pop_cleanup; fi
    gos_pop_cleanup
  fi
  exec {lockfd}>&-
  printf -v "$_var" '%s' "$file"
}
