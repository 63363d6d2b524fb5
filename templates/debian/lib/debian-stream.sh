# shellcheck shell=bash disable=SC2034
# The export/import stream of the 'debian' template: its header, its payload filters and what
# export and import decide from it. Sourced by lib/steps.sh, whose export and import steps read
# the variables set here (DEB_KIND, DEB_MODE, ...).

DEB_STREAM_MAGIC='GANETI-OS-DEBIAN-EXPORT 1'

# A stream is a text header (DEB_STREAM_MAGIC, key=value lines, "end") and a payload:
#   kind=fsblocks  the root (or data) filesystem's used blocks (deb_block_plan), default
#   kind=fs        a GNU tar archive of its files (EXPORT_FORMAT=files, and every stream written
#                  before the block format existed)
#   kind=raw       the whole disk (lib/raw-stream.sh), for any layout create does not make
#   kind=swap      nothing: import makes swap with the same UUID and label

# deb_compressor METHOD / deb_decompressor METHOD: the payload filter, in DEB_FILTER.
deb_compressor() {
  gos_stream_filter compress "$1"
  DEB_FILTER=("${GOS_STREAM_FILTER[@]}")
}

deb_decompressor() {
  gos_stream_filter decompress "$1"
  DEB_FILTER=("${GOS_STREAM_FILTER[@]}")
}

# deb_to_payload CMD [ARG...]: run CMD with its output compressed onto stdout (no filter process
# for an uncompressed stream: one copy of every byte less). Fails when either fails.
deb_to_payload() {
  local -
  set -o pipefail
  if [[ ${DEB_FILTER[0]} == cat ]]; then "$@"; else "$@" | "${DEB_FILTER[@]}"; fi
}

# deb_from_payload CMD [ARG...]: run CMD with the rest of the stream, decompressed, on stdin.
deb_from_payload() {
  if [[ ${DEB_FILTER[0]} == cat ]]; then "$@"; else "${DEB_FILTER[@]}" | "$@"; fi
}

DEB_TAR_OPTS=(--numeric-owner --xattrs --xattrs-include='*' --acls --sparse --one-file-system)

# deb_export_kind DISK: what export makes of DISK: sets DEB_KIND (fs, swap or raw), DEB_FSTYPE,
# DEB_STYLE, DEB_ROOT_* and DEB_KIND_WHY (why a disk goes raw). A filesystem travels by itself
# only in a layout create makes; everything else (more partitions, unknown filesystems, LVM or
# RAID signatures, another partition table) travels whole.
deb_export_kind() {
  local disk=$1 pttype
  DEB_KIND=raw DEB_KIND_WHY='' DEB_STYLE=none
  DEB_FSTYPE=$(deb_fs_type "$disk")
  if [[ $DEB_FSTYPE == swap ]]; then
    DEB_KIND=swap
    return 0
  fi
  pttype=$(blkid -p -o value -s PTTYPE -- "$disk" 2>/dev/null || true)
  if [[ $pttype != dos && $pttype != gpt ]]; then
    if [[ -n $pttype ]]; then
      DEB_KIND_WHY="it holds a '$pttype' partition table"
    elif [[ $DEB_FSTYPE != ext[234] ]]; then
      DEB_KIND_WHY="it holds ${DEB_FSTYPE:+a $DEB_FSTYPE signature, }no ext2/3/4 filesystem this definition can read"
    else
      DEB_KIND=fs DEB_ROOT_OFFSET=0 DEB_ROOT_SIZE=$(gos_disk_size "$disk")
    fi
    return 0
  fi
  deb_locate_root "$disk"
  if ! deb_layout_is_ours "$disk"; then
    DEB_KIND_WHY=$DEB_LAYOUT_WHY
    return 0
  fi
  DEB_FSTYPE=$(blkid -p -o value -s TYPE -O "$DEB_ROOT_OFFSET" -- "$disk" 2>/dev/null || true)
  if [[ $DEB_FSTYPE == ext[234] ]]; then
    DEB_KIND=fs
  else
    DEB_KIND_WHY="its partition 1 holds ${DEB_FSTYPE:-no filesystem it recognises}, not ext2/3/4"
  fi
}

# deb_read_header: read the stream's header from stdin (byte by byte, so the payload stays
# there) into DEB_HDR.
deb_read_header() {
  local line first key
  declare -gA DEB_HDR=()
  # Exactly the magic line's bytes: a stream that is not ours may hold no newline (or only NUL
  # bytes, which read skips) for gigabytes.
  first=$(dd bs=1 count=$((${#DEB_STREAM_MAGIC} + 1)) status=none | tr -d '\0')
  if [[ $first != "$DEB_STREAM_MAGIC" ]]; then
    local what="it starts with '${first//[^[:print:]]/?}'"
    [[ -n $first ]] || what="it is empty or starts with NUL bytes"
    gos_die "this is not a stream written by the export script of a 'debian' ganeti-os definition ($what): import only streams exported by this definition"
  fi
  while IFS= read -r -n 512 line; do
    if [[ $line == end ]]; then return 0; fi
    key=${line%%=*}
    [[ $key =~ ^[a-z]+$ ]] || gos_die "the import stream's header is damaged (line '$line')"
    DEB_HDR[$key]=${line#*=}
  done
  gos_die "the import stream ends inside its header"
}

# deb_check_header: values that reach commands and arithmetic must have their expected form.
deb_check_header() {
  local k
  for k in size fssize used; do
    [[ ${DEB_HDR[$k]:-0} =~ ^[0-9]+$ ]] || gos_die "the import stream's header is damaged ($k '${DEB_HDR[$k]}')"
  done
  [[ -z ${DEB_HDR[uuid]-} || ${DEB_HDR[uuid]} =~ ^[0-9a-fA-F-]+$ ]] || gos_die "the import stream's header is damaged (uuid '${DEB_HDR[uuid]}')"
  [[ ${DEB_HDR[label]-} =~ ^[A-Za-z0-9_.-]*$ ]] || gos_die "the import stream's header is damaged (label '${DEB_HDR[label]}')"
}

# deb_import_plan DISK: how import puts a filesystem stream onto DISK, decided before the disk is
# touched. Sets DEB_MODE: direct (the blocks onto the new partition, grown to it), stage (the
# blocks into a scratch image first: shrunk to a smaller partition, or copied file by file into
# another filesystem type), files (a tar stream unpacked into a new filesystem); and DEB_WANT_FS,
# the type the disk gets. Dies, with nothing written, when the disk cannot hold the data.
deb_import_plan() {
  local disk=$1 kind=${DEB_HDR[kind]} fstype=${DEB_HDR[fstype]} part want used=${DEB_HDR[used]:-} fssize=${DEB_HDR[fssize]:-} free
  deb_target_root_size "$disk" "${DEB_HDR[style]}" "${DEB_ESP_WANT-}"
  part=$DEB_TARGET_ROOT_SIZE
  want=$fstype
  if [[ $IMPORT_INDEX == 0 ]]; then
    want=$(gos_param filesystem)
    [[ -n $want ]] || want=$fstype
    if [[ $want != "$fstype" ]]; then
      gos_log "the stream holds an $fstype filesystem; the instance's filesystem parameter is $want: disk 0 gets $want, with the files copied into it"
    fi
  elif [[ -n $(gos_param filesystem) && $(gos_param filesystem) != "$fstype" ]]; then
    gos_log "disk $IMPORT_INDEX keeps its exported $fstype filesystem (the filesystem parameter applies to disk 0 only: the instance's fstab names this disk's type)"
  fi
  DEB_WANT_FS=$want
  # Room for the data, its metadata and a journal in the new filesystem.
  if [[ -n $used ]] && ((used + used / 10 + 32 * 1048576 > part)); then
    gos_die "disk $IMPORT_INDEX is too small: its root partition would hold $((part / 1048576)) MiB, the exported filesystem has $((used / 1048576)) MiB in use (at least $(((used + used / 10 + 32 * 1048576) / 1048576 + 2)) MiB needed); nothing was written"
  fi
  if [[ $kind == fs ]]; then
    DEB_MODE=files
    ((part >= MIN_DISK_MIB * 1048576 / 2)) || gos_die "disk $IMPORT_INDEX is too small: $((part / 1048576)) MiB; nothing was written"
    return 0
  fi
  [[ -n $fssize && -n $used ]] || gos_die "the import stream's header is damaged (a block stream without fssize and used)"
  if [[ $want == "$fstype" ]] && ((fssize <= part)); then
    DEB_MODE=direct
    return 0
  fi
  DEB_MODE=stage
  # The scratch image holds the blocks in use; it lives in TMPDIR, checked before the disk is touched.
  free=$(($(stat -f -c '%a * %S' -- "${TMPDIR:-/tmp}")))
  if ((free < used + 64 * 1048576)); then
    gos_die "disk $IMPORT_INDEX needs the exported filesystem ($((fssize / 1048576)) MiB, $((used / 1048576)) MiB in use) $( ((fssize > part)) && printf 'shrunk to %s MiB' $((part / 1048576)) || printf 'converted to %s' "$want"), through a scratch copy in ${TMPDIR:-/tmp}, which has only $((free / 1048576)) MiB free: set TMPDIR or use a larger disk; nothing was written"
  fi
  gos_log "disk $IMPORT_INDEX: through a scratch copy in ${TMPDIR:-/tmp} ($( ((fssize > part)) && printf 'the exported filesystem of %s MiB is shrunk to the %s MiB partition' $((fssize / 1048576)) $((part / 1048576)) || printf 'copied file by file into %s' "$want"))"
}

# deb_tune_new_fs DEV UUID: a block copy's filesystem made this instance's: journal replayed
# if the export came from a live disk, grown to fill DEV, given UUID (instantly: metadata_csum_seed).
deb_tune_new_fs() {
  local dev=$1 uuid=$2
  if dumpe2fs -h -- "$dev" 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery'; then
    e2fsck -E journal_only -y -- "$dev" >/dev/null 2>&1
    (($? < 4)) || gos_die "could not replay the journal of the imported filesystem (e2fsck)"
  fi
  resize2fs -f -- "$dev" >/dev/null 2>&1 || gos_die "could not grow the imported filesystem to its partition (resize2fs)"
  if [[ -n $uuid ]]; then
    if dumpe2fs -h -- "$dev" 2>/dev/null | grep -q '^Filesystem features:.*metadata_csum' &&
      ! dumpe2fs -h -- "$dev" 2>/dev/null | grep -q '^Filesystem features:.*metadata_csum_seed'; then
      tune2fs -O metadata_csum_seed -- "$dev" >/dev/null 2>&1 || gos_die "could not prepare the imported filesystem for its new UUID (tune2fs)"
    fi
    tune2fs -U "$uuid" -- "$dev" >/dev/null 2>&1 || gos_die "could not give the imported filesystem its UUID (tune2fs)"
  fi
}
