# shellcheck shell=bash
# ganeti-os runtime: sourced by every script of this OS definition (create, import, export,
# rename, verify). Written by ganeti-os; `ganeti-os` commands regenerate it, so put site changes
# in defaults.conf, /etc/default/<os> or /etc/ganeti/<os>/ instead.
#
# The calling shim sets GOS_DIR (the definition directory) and calls gos_main with its name.

GOS_SYSCONFDIR=${GANETI_OS_SYSCONFDIR:-/etc}
GOS_SCRIPT=
GOS_CLEANUP=()
GOS_VARIANT=
GOS_OS_NAME=

# --- messages -------------------------------------------------------------------------------
# Everything goes to stderr: export's stdout is the instance's data stream.

gos_log() {
  printf '%s: %s\n' "${GOS_SCRIPT:-ganeti-os}" "$*" >&2
}

gos_debug() {
  if [[ ${DEBUG_LEVEL:-0} =~ ^[1-9] ]]; then gos_log "debug: $*"; fi
  return 0
}

gos_die() {
  gos_log "error: $*"
  exit 1
}

# gos_fault STEP: fail here when the (test-only) setting FAULT_AT names this step. Ganeti clears
# the environment, so FAULT_AT comes from a configuration layer, like every other setting.
gos_fault() {
  if [[ -n ${FAULT_AT-} && $FAULT_AT == "$1" ]]; then
    gos_die "injected failure at step '$1' (FAULT_AT)"
  fi
  gos_debug "step $1"
}

# --- the cleanup stack ----------------------------------------------------------------------
# Every acquired resource pushes its release; one EXIT trap releases them in reverse order, on
# success, on error and on signals alike.

# gos_push_cleanup CMD [ARG...]: run CMD ARG... at exit (arguments are kept exactly).
gos_push_cleanup() {
  local quoted
  printf -v quoted '%q ' "$@"
  GOS_CLEANUP+=("$quoted")
}

# gos_pop_cleanup: run the most recently pushed release now (to release in a chosen order).
gos_pop_cleanup() {
  local n=${#GOS_CLEANUP[@]} step
  ((n > 0)) || return 0
  step=${GOS_CLEANUP[n - 1]}
  unset 'GOS_CLEANUP[n-1]'
  eval "$step"
}

gos_run_cleanup() {
  local rc=$? i step
  set +e
  # Nothing cuts the releases short: a second Ctrl-C or SIGTERM waits for them. Background jobs
  # (key generation) end first, so that nothing of ours still holds a mount.
  trap '' INT TERM HUP
  local -a jobs_left=()
  mapfile -t jobs_left < <(jobs -p)
  if ((${#jobs_left[@]})); then
    kill "${jobs_left[@]}" 2>/dev/null
    wait 2>/dev/null
  fi
  for ((i = ${#GOS_CLEANUP[@]} - 1; i >= 0; i--)); do
    step=${GOS_CLEANUP[i]}
    eval "$step" || gos_log "warning: cleanup step failed: $step"
  done
  GOS_CLEANUP=()
  return "$rc"
}

# gos_umount DIR: unmount DIR; when it is busy (a process of an interrupted script still ending),
# try again for about two seconds, then detach it lazily (the kernel frees it with its last user).
gos_umount() {
  local tries=0
  while ((tries++ < 10)); do
    umount -- "$1" 2>/dev/null && return 0
    mountpoint -q -- "$1" || return 0
    sleep 0.2
  done
  gos_log "warning: $1 is still busy; unmounting it lazily"
  umount --lazy -- "$1"
}

# gos_umount_under DIR: unmount DIR and every mount below it, deepest first (what an interrupted
# installer such as mmdebstrap leaves in its chroot: proc, sys, dev/pts). Paths with blanks are
# not matched (temporary directories have none).
gos_umount_under() {
  local dir=${1%/} m
  local -a below=()
  mapfile -t below < <(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r -u)
  for m in "${below[@]}"; do gos_umount "$m"; done
}

trap gos_run_cleanup EXIT
trap 'gos_log "interrupted"; exit 130' INT TERM HUP

# gos_mktemp_dir VAR: a private temporary directory, removed at exit, its path in VAR.
# (Locals are prefixed so that VAR may be any name the caller likes.)
gos_mktemp_dir() {
  local _gos_tmp
  _gos_tmp=$(mktemp -d "${TMPDIR:-/tmp}/ganeti-os.XXXXXXXX") || gos_die "cannot create a temporary directory"
  gos_push_cleanup rm -rf --one-file-system -- "$_gos_tmp"
  printf -v "$1" '%s' "$_gos_tmp"
}

# --- usage and arguments --------------------------------------------------------------------

gos_usage() {
  local what
  case $GOS_SCRIPT in
    create) what="Install the operating system onto a new instance's disks." ;;
    import) what="Restore disk IMPORT_INDEX of an instance from the stream on standard input." ;;
    export) what="Write disk EXPORT_INDEX of an instance as a stream on standard output." ;;
    rename) what="Tell the instance's operating system its new name (OLD_INSTANCE_NAME -> INSTANCE_NAME)." ;;
    verify) what="Check OS parameters (OSP_* variables) before Ganeti accepts them." ;;
    *) what="Part of a Ganeti OS definition." ;;
  esac
  local args=""
  [[ $GOS_SCRIPT == verify ]] && args=" parameters"
  cat <<USAGE
Usage: $GOS_SCRIPT$args
       $GOS_SCRIPT --help

$what

This script belongs to the Ganeti OS definition in $GOS_DIR. Ganeti runs it with its
input in environment variables (see ganeti-os-interface(7)); 'ganeti-os run $GOS_SCRIPT' runs it
the same way by hand. DEBUG_LEVEL=1 traces every step.
USAGE
}

gos_parse_args() {
  if [[ ${1-} == -h || ${1-} == --help ]]; then
    gos_usage
    exit 0
  fi
  if [[ $GOS_SCRIPT == verify ]]; then
    if (($# == 0)); then
      gos_usage >&2
      gos_log "error: expected the checks to run (Ganeti passes 'parameters')"
      exit 2
    fi
    local check
    for check in "$@"; do
      if [[ $check != parameters ]]; then
        gos_usage >&2
        gos_log "error: unknown check '$check' (the interface defines only 'parameters')"
        exit 2
      fi
    done
  elif (($# > 0)); then
    gos_usage >&2
    gos_log "error: unexpected argument '$1': Ganeti passes everything in environment variables"
    exit 2
  fi
}

# --- the environment Ganeti provides --------------------------------------------------------

# gos_require_env VAR...: fail, naming the variable, unless each is set and not empty.
gos_require_env() {
  local var
  for var in "$@"; do
    if [[ -z ${!var-} ]]; then
      gos_die "missing variable $var: Ganeti sets it for '$GOS_SCRIPT'; to run this script by hand use 'ganeti-os run $GOS_SCRIPT'"
    fi
  done
}

# gos_require_number VAR: VAR must be a non-negative integer.
gos_require_number() {
  gos_require_env "$1"
  [[ ${!1} =~ ^[0-9]+$ ]] || gos_die "variable $1 must be a number, not '${!1}'"
}

# What each script needs before it touches anything.
gos_check_env() {
  case $GOS_SCRIPT in
    create)
      gos_require_env INSTANCE_NAME HYPERVISOR
      gos_require_number DISK_COUNT
      ((DISK_COUNT >= 1)) || gos_die "the instance has no disk (DISK_COUNT=0): there is nothing to install onto"
      ;;
    export)
      gos_require_number EXPORT_INDEX
      gos_require_env EXPORT_DEVICE
      ;;
    import)
      gos_require_number IMPORT_INDEX
      gos_require_env IMPORT_DEVICE
      ;;
    rename)
      gos_require_env INSTANCE_NAME OLD_INSTANCE_NAME
      ;;
  esac
}

# --- configuration layers -------------------------------------------------------------------
# defaults.conf (this definition) < /etc/ganeti/<os>/defaults.conf < /etc/default/<os>
#   < /etc/ganeti/<os>/site.conf < variants/<variant>.conf < /etc/ganeti/<os>/variants/<variant>.conf
# (The .deb from `ganeti-os pack` installs defaults.conf and variants/*.conf a second time as
# conffiles in /etc/ganeti/<os>/: the node's copies, read over the shipped ones.)

gos_source_if() {
  if [[ -f $1 ]]; then
    gos_debug "reading $1"
    # shellcheck source=/dev/null
    . "$1" || gos_die "could not read configuration file $1"
  fi
}

# The variants Ganeti sees: variants.list, stripped, without blank and comment lines.
gos_variants() {
  local line
  [[ -f $GOS_DIR/variants.list ]] || return 0
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line#"${line%%[![:space:]]*}"}
    line=${line%"${line##*[![:space:]]}"}
    [[ -z $line || $line == \#* ]] && continue
    printf '%s\n' "$line"
  done <"$GOS_DIR/variants.list"
}

gos_resolve_variant() {
  local -a known=()
  local v
  mapfile -t known < <(gos_variants)
  if [[ -n ${OS_VARIANT-} ]]; then
    for v in "${known[@]}"; do
      if [[ $v == "$OS_VARIANT" ]]; then
        GOS_VARIANT=$v
        return 0
      fi
    done
    if ((${#known[@]} == 0)); then
      gos_die "OS_VARIANT is '$OS_VARIANT' but this definition has no variants (no variants.list)"
    fi
    gos_die "unknown variant '$OS_VARIANT': variants.list lists ${known[*]}"
  fi
  # API 10, or an OS without variants: the first (default) variant's configuration applies.
  GOS_VARIANT=${known[0]-}
}

# gos_check_setting KEY PATTERN WHAT: die unless setting KEY's value matches ^(PATTERN)$ (the
# form the template's settings table gives it; lib/settings.sh calls this).
gos_check_setting() {
  local re="^($2)\$"
  [[ ${!1} =~ $re ]] || gos_die "$1 must be $3, not '${!1}'"
}

gos_load_config() {
  GOS_OS_NAME=${OS_NAME:-$(basename "$GOS_DIR")}
  GOS_SITE_DIR=$GOS_SYSCONFDIR/ganeti/$GOS_OS_NAME
  gos_source_if "$GOS_DIR/defaults.conf"
  gos_source_if "$GOS_SITE_DIR/defaults.conf"
  gos_source_if "$GOS_SYSCONFDIR/default/$GOS_OS_NAME"
  gos_source_if "$GOS_SITE_DIR/site.conf"
  gos_resolve_variant
  if [[ -n $GOS_VARIANT ]]; then
    gos_source_if "$GOS_DIR/variants/$GOS_VARIANT.conf"
    gos_source_if "$GOS_SITE_DIR/variants/$GOS_VARIANT.conf"
  fi
}

# --- OS parameters --------------------------------------------------------------------------

# gos_param_var NAME: the variable a parameter reaches the scripts as (OSP_<NAME>).
gos_param_var() {
  local upper=${1^^}
  printf 'OSP_%s' "${upper//-/_}"
}

# Declared parameters that Ganeti did not pass get their default value.
gos_load_params() {
  # shellcheck source=/dev/null
  . "$GOS_DIR/lib/parameters.sh"
  local p var
  for p in "${GOS_PARAMS[@]}"; do
    var=$(gos_param_var "$p")
    if [[ -z ${!var+set} && -n ${GOS_PARAM_DEFAULT[$p]+set} ]]; then
      printf -v "$var" '%s' "${GOS_PARAM_DEFAULT[$p]}"
      export "${var?}"
    fi
  done
}

# gos_param NAME: the parameter's value (Ganeti's, else the default, else empty).
gos_param() {
  local var
  var=$(gos_param_var "$1")
  printf '%s' "${!var-}"
}

# Check every parameter Ganeti passed against its declared choices and pattern.
gos_check_params() {
  local p var value choice ok failed=0
  for p in "${GOS_PARAMS[@]}"; do
    var=$(gos_param_var "$p")
    [[ -n ${!var+set} ]] || continue
    value=${!var}
    if [[ -n ${GOS_PARAM_CHOICES[$p]+set} ]]; then
      ok=0
      while IFS= read -r choice; do
        if [[ $value == "$choice" ]]; then ok=1; fi
      done <<<"${GOS_PARAM_CHOICES[$p]}"
      if ((!ok)); then
        gos_log "invalid value '$value' for parameter $p: expected one of $(printf '%s' "${GOS_PARAM_CHOICES[$p]}" | tr '\n' ' ')"
        failed=1
        continue
      fi
    fi
    if [[ -n ${GOS_PARAM_PATTERN[$p]+set} ]] && ! [[ $value =~ ^(${GOS_PARAM_PATTERN[$p]})$ ]]; then
      gos_log "invalid value '$value' for parameter $p: it must match ${GOS_PARAM_PATTERN[$p]}"
      failed=1
    fi
    if ((!failed)) && declare -F gos_check_param >/dev/null; then
      gos_check_param "$p" "$value" || failed=1
    fi
  done
  return "$failed"
}

# --- the node -------------------------------------------------------------------------------

# gos_node_proxy: PROXY from the configuration, else apt's own proxy setting on this node
# (Acquire::http::Proxy; DIRECT or false mean none).
gos_node_proxy() {
  if [[ -z ${PROXY-} ]] && command -v apt-config >/dev/null; then
    PROXY=$(apt-config dump Acquire::http::Proxy 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n 1)
    if [[ $PROXY == DIRECT || $PROXY == false ]]; then PROXY=''; fi
  fi
  return 0
}

# --- disks ----------------------------------------------------------------------------------

# gos_disk_size PATH: size in bytes of a block device or a regular file.
gos_disk_size() {
  if [[ -b $1 ]]; then
    blockdev --getsize64 "$1"
  elif [[ -f $1 ]]; then
    stat -L -c %s -- "$1"
  else
    gos_die "disk $1 is neither a block device nor a regular file"
  fi
}

# gos_attach_disk PATH VAR: a block device for PATH in VAR. A regular file (file and sharedfile
# disk templates) is attached to a loop device, detached again at exit.
gos_attach_disk() {
  local _gos_disk=$1 _gos_dev
  if [[ -b $_gos_disk ]]; then
    printf -v "$2" '%s' "$_gos_disk"
    return 0
  fi
  [[ -f $_gos_disk ]] || gos_die "disk $_gos_disk is neither a block device nor a regular file"
  _gos_dev=$(losetup --find --show -- "$_gos_disk") || gos_die "could not attach $_gos_disk to a loop device (losetup)"
  gos_push_cleanup losetup --detach "$_gos_dev"
  gos_debug "attached $_gos_disk as $_gos_dev"
  printf -v "$2" '%s' "$_gos_dev"
}

# gos_attach_range DISK OFFSET SIZE VAR [ro]: a loop device for SIZE bytes of DISK from OFFSET
# (a partition, a filesystem image), detached at exit; its path in VAR.
gos_attach_range() {
  local _gos_disk=$1 _gos_offset=$2 _gos_size=$3 _gos_var=$4 _gos_loop
  local -a _gos_opts=(--find --show --offset "$_gos_offset" --sizelimit "$_gos_size")
  if [[ ${5-} == ro ]]; then _gos_opts+=(--read-only); fi
  _gos_loop=$(losetup "${_gos_opts[@]}" -- "$_gos_disk") || gos_die "could not attach $_gos_size bytes of $_gos_disk at offset $_gos_offset to a loop device"
  gos_push_cleanup losetup --detach "$_gos_loop"
  gos_debug "attached $_gos_disk (offset $_gos_offset, $_gos_size bytes) as $_gos_loop"
  printf -v "$_gos_var" '%s' "$_gos_loop"
}

# gos_mount DEV DIR [OPTIONS [FSTYPE]]: mount DEV on DIR (made if missing), unmounted at exit.
gos_mount() {
  local dev=$1 dir=$2 mopts=${3-} fstype=${4-}
  mkdir -p -- "$dir"
  mount ${fstype:+-t "$fstype"} ${mopts:+-o "$mopts"} -- "$dev" "$dir" || gos_die "could not mount $dev on $dir${fstype:+ ($fstype)}"
  gos_push_cleanup gos_umount "$dir"
}

# gos_announce_size BYTES: tell Ganeti the size of the coming stream (EXP_SIZE_FD is optional).
gos_announce_size() {
  [[ -n ${EXP_SIZE_FD-} ]] || return 0
  if [[ ! $EXP_SIZE_FD =~ ^[0-9]+$ ]]; then
    gos_log "warning: EXP_SIZE_FD is not a file descriptor number ('$EXP_SIZE_FD'); size not announced"
    return 0
  fi
  printf '%s\n' "$1" >&"$EXP_SIZE_FD" || gos_log "warning: could not write the stream size to fd $EXP_SIZE_FD"
}

# --- steps ----------------------------------------------------------------------------------
# Each template's lib/steps.sh defines gos_step_create, _import, _export and _rename; verify
# has this default (the declared parameters' choices and patterns), which a template may replace.

gos_step_verify() {
  gos_check_params || gos_die "invalid OS parameters"
  gos_log "parameters accepted"
}

# --- main -----------------------------------------------------------------------------------

# The template's settings (gos_settings), generated from its settings table, then its steps.
# shellcheck source=/dev/null
. "$GOS_DIR/lib/settings.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/steps.sh"

# gos_main SCRIPT [ARG...]: run one script of the definition.
gos_main() {
  GOS_SCRIPT=$1
  shift
  gos_parse_args "$@"
  gos_load_config
  gos_load_params
  gos_check_env
  if [[ ${DEBUG_LEVEL:-0} =~ ^[1-9] ]]; then
    PS4='+ ${BASH_SOURCE##*/}:${LINENO}: '
    set -x
  fi
  gos_debug "OS ${GOS_OS_NAME}${GOS_VARIANT:++$GOS_VARIANT}, API ${OS_API_VERSION:-?}"
  "gos_step_$GOS_SCRIPT"
}
