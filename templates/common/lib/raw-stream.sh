# shellcheck shell=bash
# Raw whole-disk streams, for every template that moves a disk it cannot read file by file: the
# disk's bytes, compressed (runs of zeros, free space included, cost almost nothing), with the
# stream's size announced on EXP_SIZE_FD, written back without growing a file-backed disk and,
# where the target can be zeroed cheaply (a regular file, a loop device), without writing its
# zeros (the target stays sparse). Sourced by a template's lib/steps.sh; needs lib/runtime.sh.
#
#   gos_raw_export DISK METHOD [PREFIX_BYTES]   disk -> stdout
#   gos_raw_import DISK METHOD BYTES            stdin -> disk (exactly BYTES bytes)
#
# METHOD is none, gzip or zstd; gos_raw_method picks one for a raw stream.

# gos_stream_filter compress|decompress METHOD: the filter command for METHOD, in
# GOS_STREAM_FILTER (an array). Dies naming the method when it is unknown or not installed.
gos_stream_filter() {
  local way=$1 method=$2
  case $way:$method in
    *:none) GOS_STREAM_FILTER=(cat) ;;
    compress:gzip) GOS_STREAM_FILTER=(gzip -1) ;;
    compress:zstd) GOS_STREAM_FILTER=(zstd -q -T0 -1) ;;
    decompress:gzip) GOS_STREAM_FILTER=(gzip -dc) ;;
    decompress:zstd) GOS_STREAM_FILTER=(zstd -dcq) ;;
    compress:*) gos_die "unknown stream compression '$method' (expected none, gzip or zstd)" ;;
    *) gos_die "the stream is compressed with '$method', which this definition cannot read" ;;
  esac
  command -v "${GOS_STREAM_FILTER[0]}" >/dev/null ||
    gos_die "stream compression $method needs ${GOS_STREAM_FILTER[0]}, which is not installed on this node"
}

# gos_raw_method METHOD: the compression a raw stream uses when METHOD is asked for: METHOD itself,
# except that none becomes zstd (else gzip), since a raw disk is mostly zeros or free space.
gos_raw_method() {
  if [[ $1 != none ]]; then
    printf '%s' "$1"
  elif command -v zstd >/dev/null; then
    printf 'zstd'
  else
    printf 'gzip'
  fi
}

# gos_raw_export DISK METHOD [PREFIX_BYTES]: write DISK's bytes, compressed with METHOD, to
# stdout, after announcing PREFIX_BYTES (what the caller already wrote, e.g. a header) plus the
# payload's size on EXP_SIZE_FD: exact without compression, else an estimate (the bytes the disk
# file occupies, or the device's size). Reads the disk once, in order.
gos_raw_export() {
  local disk=$1 method=$2 prefix=${3:-0} size estimate
  gos_stream_filter compress "$method"
  size=$(gos_disk_size "$disk")
  estimate=$size
  if [[ $method != none && -f $disk ]]; then
    estimate=$(($(stat -L -c '%b * %B' -- "$disk")))
    if ((estimate > size)); then estimate=$size; fi
  fi
  gos_announce_size $((prefix + estimate))
  gos_debug "raw stream of $disk: $size bytes, $method"
  local -
  set -o pipefail
  dd if="$disk" bs=1M status=none | "${GOS_STREAM_FILTER[@]}" || gos_die "could not read disk $disk"
}

# gos_zero_disk DISK: make DISK read as zeros, cheaply, or fail (then nothing was changed): a
# regular file gets its blocks deallocated, a loop device is zeroed through its backing file.
# Other block devices are left alone (zeroing them would write every byte).
gos_zero_disk() {
  local disk=$1 name
  if [[ -f $disk ]]; then
    fallocate --punch-hole --keep-size --offset 0 --length "$(gos_disk_size "$disk")" -- "$disk" 2>/dev/null
    return
  fi
  name=$(basename -- "$(readlink -f -- "$disk")")
  [[ -b $disk && $name == loop* && -e /sys/block/$name/loop/backing_file ]] || return 1
  blkdiscard --zeroout --force -- "$disk" 2>/dev/null
}

# gos_raw_import DISK METHOD BYTES: write the raw stream on stdin (compressed with METHOD, BYTES
# bytes once decompressed) onto DISK. Refused before anything is written when BYTES exceeds the
# disk; a stream longer or shorter than BYTES fails. A file-backed disk never grows.
gos_raw_import() {
  local disk=$1 method=$2 want=$3 size conv=notrunc,fsync got
  [[ $want =~ ^[0-9]+$ ]] || gos_die "the raw stream's size '$want' is not a number"
  size=$(gos_disk_size "$disk")
  ((want <= size)) || gos_die "disk $disk is smaller ($size bytes) than the exported disk ($want bytes): nothing was written"
  gos_stream_filter decompress "$method"
  # Zeros need not be written where the disk already reads as zeros.
  if gos_zero_disk "$disk"; then conv+=,sparse; fi
  got=$("${GOS_STREAM_FILTER[@]}" 2>/dev/null | {
    LC_ALL=C dd of="$disk" bs=1M iflag=fullblock,count_bytes count="$want" conv="$conv" 2>&1 >/dev/null |
      sed -n 's/^\([0-9]*\) bytes.*/\1/p'
    if (($(head -c 1 | wc -c) > 0)); then echo extra; fi
  })
  case $got in
    *extra*) gos_die "the raw stream holds more than the $want bytes its header announces: is it damaged?" ;;
    "$want") ;;
    *) gos_die "the raw stream ended after ${got:-0} of $want bytes: it is truncated or damaged (disk $disk is incomplete)" ;;
  esac
}
