# shellcheck shell=bash
# A whole disk as a compressed raw stream, for export and import: one header line
#   GANETI-OS-RAW 1 size=<bytes> compress=<zstd|gzip|none>
# then the disk's bytes, compressed. Zeros and holes cost next to nothing in the stream; import
# refuses a disk smaller than the exported one, never writes past the disk's end, never
# truncates a file-backed disk and leaves zeros as holes on one.
# Sourced by a template's lib/steps.sh; uses the runtime's gos_* helpers.

GOS_RAW_MAGIC='GANETI-OS-RAW 1'

# gos_raw_compressor KIND: the command that compresses stdin to stdout (KIND: zstd, gzip,
# none); zstd falls back to gzip on a node without it.
gos_raw_compressor() {
  case $1 in
    zstd)
      if command -v zstd >/dev/null; then
        printf 'zstd\n-q\n-T0\n-3\n-c\n'
      else
        printf 'gzip\n-1\n-c\n'
      fi
      ;;
    gzip) printf 'gzip\n-1\n-c\n' ;;
    none) printf 'cat\n' ;;
    *) gos_die "unknown export compression '$1': use zstd, gzip or none" ;;
  esac
}

# gos_raw_export DEVICE KIND: the stream of DEVICE on stdout. The disk's size in bytes is
# announced on EXP_SIZE_FD (an upper bound: the stream is compressed).
gos_raw_export() {
  local dev=$1 kind=$2 size
  local -a comp
  mapfile -t comp < <(gos_raw_compressor "$kind")
  if [[ ${comp[0]} == gzip ]]; then kind=gzip; fi
  if [[ ${comp[0]} == cat ]]; then kind=none; fi
  size=$(gos_disk_size "$dev")
  gos_announce_size "$size"
  gos_debug "exporting $dev ($size bytes, $kind)"
  printf '%s size=%s compress=%s\n' "$GOS_RAW_MAGIC" "$size" "$kind"
  dd if="$dev" bs=4M iflag=fullblock status=none | "${comp[@]}" || gos_die "could not read $dev"
}

# gos_raw_import DEVICE: write the stream on stdin onto DEVICE. Prints the exported disk's size.
gos_raw_import() {
  local dev=$1 line magic size kind disk_size out rc=0
  local -a decomp
  local conv=notrunc,fsync
  IFS= read -r line || gos_die "the import stream is empty"
  magic=${line% size=*}
  [[ $magic == "$GOS_RAW_MAGIC" ]] || gos_die "the import stream is not a raw disk stream of this definition (it starts with '${line:0:40}')"
  [[ $line =~ size=([0-9]+)\ compress=(zstd|gzip|none)$ ]] || gos_die "the import stream has a damaged header: '$line'"
  size=${BASH_REMATCH[1]} kind=${BASH_REMATCH[2]}
  disk_size=$(gos_disk_size "$dev")
  ((disk_size >= size)) || gos_die "the target disk ($dev, $disk_size bytes) is smaller than the exported disk ($size bytes): use a disk at least as large"
  case $kind in
    zstd) command -v zstd >/dev/null || gos_die "the stream is zstd-compressed: install zstd"; decomp=(zstd -q -d -c) ;;
    gzip) decomp=(gzip -d -c) ;;
    none) decomp=(cat) ;;
  esac
  if [[ -f $dev ]] && fallocate --punch-hole --keep-size --offset 0 --length "$size" -- "$dev" 2>/dev/null; then
    # The file now reads as zeros: skip writing them, holes stay holes.
    conv=notrunc,sparse,fsync
  fi
  "${decomp[@]}" | {
    # dd's summary (C locale: Ganeti clears LANG) says how many bytes arrived.
    out=$(LC_ALL=C dd of="$dev" bs=4M iflag=fullblock,count_bytes count="$size" conv="$conv" 2>&1) || exit 1
    [[ $out =~ (^|$'\n')([0-9]+)\ bytes ]] && ((BASH_REMATCH[2] == size)) || exit 3
    # Whatever follows the disk's bytes means the stream is not what its header says.
    (($(head -c 1 | wc -c) == 0)) || exit 2
  } || rc=$?
  case $rc in
    0) ;;
    2) gos_die "the import stream holds more than the $size bytes its header announces" ;;
    3) gos_die "the import stream ended before the $size bytes its header announces (truncated stream)" ;;
    *) gos_die "could not write the import stream onto $dev (damaged or truncated stream?)" ;;
  esac
  printf '%s\n' "$size"
}
