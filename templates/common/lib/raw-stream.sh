# shellcheck shell=bash
# Raw whole-disk streams, for every template that moves a disk it cannot read file by file. The
# payload is the disk's non-zero data as records (offset and length as big-endian 64-bit numbers,
# then the bytes) and an end record (offset = the disk's size, length 0), compressed. Holes of a
# file-backed disk are skipped without being read (SEEK_DATA/SEEK_HOLE) and zero blocks are left
# out, so export and import cost what the disk holds, not its size (32 GiB sparse file, 330 MiB
# of data: 1 s out, 0.8 s in, where dd | zstd of every byte took 53 s and 33 s). Import refuses
# a disk smaller than the exported one before writing, fails on a truncated or over-long stream,
# never writes past the exported size (a file-backed disk never grows), keeps a file-backed
# disk's zeros as holes and zeroes a block device where the stream has no data. The record
# coder is Python 3 (present on every Ganeti node). Sourced by a template's lib/steps.sh; needs
# lib/runtime.sh.
#
#   gos_raw_export DISK METHOD [PREFIX_BYTES]   payload: disk -> stdout (the caller's header first)
#   gos_raw_import DISK METHOD BYTES            payload: stdin -> disk (a disk of BYTES bytes)
#   gos_raw_stream_export DISK METHOD           header line GOS_RAW_MAGIC, then the payload
#   gos_raw_stream_import DISK                  the same back; prints the exported size
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

# The record coder: python3 -c "$GOS_RAW_CODER" export DISK SIZE | import DISK SIZE ZEROED
# (ZEROED 1: the disk already reads as zeros, gaps are skipped; 0: gaps are zeroed). Exit
# status: 0 done, 2 the stream holds more than SIZE bytes or is damaged, 3 it ended early.
GOS_RAW_CODER='
import os, stat, struct, sys
BLOCK = 1 << 20
ZERO = bytes(BLOCK)
REC = struct.Struct(">QQ")
mode, dev, size = sys.argv[1], sys.argv[2], int(sys.argv[3])

def data_ranges(fd):
    """The ranges of a regular file that hold data (holes skipped), else everything."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        yield 0, size
        return
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            return
        if start >= size:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        pos = end

def export():
    fd = os.open(dev, os.O_RDONLY)
    out = sys.stdout.buffer
    for start, end in data_ranges(fd):
        pos = start
        while pos < end:
            buf = os.pread(fd, min(BLOCK, end - pos), pos)
            if not buf:
                sys.exit("short read at byte %d" % pos)
            if buf != ZERO[:len(buf)]:
                out.write(REC.pack(pos, len(buf)))
                out.write(buf)
            pos += len(buf)
    out.write(REC.pack(size, 0))
    out.flush()

def read_exact(inp, view):
    got = 0
    while got < len(view):
        n = inp.readinto(view[got:])
        if not n:
            sys.exit(3)
        got += n
    return view

def zero(fd, start, end, is_block):
    """Zeros from start to end (BLKZEROOUT on a block device: a loop device punches its file)."""
    if end <= start:
        return
    if is_block:
        try:
            import fcntl
            fcntl.ioctl(fd, 0x127f, struct.pack("QQ", start, end - start))  # BLKZEROOUT
            return
        except OSError:
            pass
    while start < end:
        start += os.pwrite(fd, ZERO[:min(BLOCK, end - start)], start)

def import_(zeroed):
    fd = os.open(dev, os.O_WRONLY)
    is_block = stat.S_ISBLK(os.fstat(fd).st_mode)
    inp = sys.stdin.buffer
    rec = memoryview(bytearray(REC.size))
    buf = memoryview(bytearray(BLOCK))
    done = 0
    while True:
        off, length = REC.unpack(read_exact(inp, rec))
        if length == 0:
            if off != size:
                sys.exit(2)
            break
        if off < done or off + length > size:
            sys.exit(2)
        if not zeroed:
            zero(fd, done, off, is_block)
        if length > len(buf):
            buf = memoryview(bytearray(length))
        data = read_exact(inp, buf[:length])
        pos = 0
        while pos < length:
            pos += os.pwrite(fd, data[pos:], off + pos)
        done = off + length
    if not zeroed:
        zero(fd, done, size, is_block)
    if inp.read(1):
        sys.exit(2)
    os.fsync(fd)

export() if mode == "export" else import_(sys.argv[4] == "1")
'

# gos_raw_export DISK METHOD: write DISK's payload (its non-zero data as records), compressed
# with METHOD, to stdout. Reads the data once, in order. Nothing is announced on EXP_SIZE_FD:
# the stream's size is known only once it is written (zero blocks are left out, then it is
# compressed), and an estimate would be wrong (Ganeti's progress, and `ganeti-os test`, compare
# it with the bytes streamed); Ganeti then shows the bytes moved and the throughput.
gos_raw_export() {
  local disk=$1 method=$2 size
  command -v python3 >/dev/null || gos_die "python3 is needed to export a disk (it is part of every Ganeti node)"
  gos_stream_filter compress "$method"
  size=$(gos_disk_size "$disk")
  gos_debug "raw stream of $disk: $size bytes, $method"
  local -
  set -o pipefail
  if [[ ${GOS_STREAM_FILTER[0]} == cat ]]; then
    python3 -c "$GOS_RAW_CODER" export "$disk" "$size" || gos_die "could not read disk $disk"
  else
    python3 -c "$GOS_RAW_CODER" export "$disk" "$size" | "${GOS_STREAM_FILTER[@]}" || gos_die "could not read disk $disk"
  fi
}

# gos_raw_import DISK METHOD BYTES: write the payload on stdin (compressed with METHOD, of a disk
# of BYTES bytes) onto DISK: the data where the stream has it, zeros elsewhere (holes in a
# file-backed disk). Refused before anything is written when BYTES exceeds the disk; a truncated,
# damaged or over-long stream fails. Bytes of DISK past BYTES are left as they are.
gos_raw_import() {
  local disk=$1 method=$2 want=$3 size zeroed=0 rc=0
  [[ $want =~ ^[0-9]+$ ]] || gos_die "the raw stream's size '$want' is not a number"
  command -v python3 >/dev/null || gos_die "python3 is needed to import a disk (it is part of every Ganeti node)"
  size=$(gos_disk_size "$disk")
  ((want <= size)) || gos_die "disk $disk is smaller ($size bytes) than the exported disk ($want bytes): nothing was written"
  gos_stream_filter decompress "$method"
  # A file's old data becomes holes; where that fails, the coder writes the zeros itself.
  if [[ -f $disk ]] && fallocate --punch-hole --keep-size --offset 0 --length "$want" -- "$disk" 2>/dev/null; then
    zeroed=1
  fi
  local -a status
  if "${GOS_STREAM_FILTER[@]}" 2>/dev/null | python3 -c "$GOS_RAW_CODER" import "$disk" "$want" "$zeroed"; then
    status=("${PIPESTATUS[@]}")
  else
    status=("${PIPESTATUS[@]}")
  fi
  rc=${status[1]}
  # The coder's verdict first (the decompressor dies of SIGPIPE when the coder stops early).
  if ((rc == 0 && status[0] != 0)); then rc=4; fi
  case $rc in
    0) ;;
    4) gos_die "the raw stream is damaged or truncated (its $method compression does not decode, or bytes follow its end): disk $disk may be incomplete" ;;
    2) gos_die "the raw stream is damaged (a record beyond the $want bytes it announces, or data after its end): disk $disk is incomplete" ;;
    3) gos_die "the raw stream ended before its end record: it is truncated or damaged (disk $disk is incomplete)" ;;
    *) gos_die "could not write the raw stream onto $disk (damaged or truncated stream?)" ;;
  esac
}

# A self-describing raw stream (for templates without a header of their own): one line
#   GANETI-OS-RAW 2 size=<bytes> compress=<zstd|gzip|none>
# then the payload of gos_raw_export.
GOS_RAW_MAGIC='GANETI-OS-RAW 2'

# gos_raw_stream_export DISK METHOD: the header line and DISK's payload on stdout (METHOD zstd
# becomes gzip on a node without zstd); no size is announced, as by gos_raw_export.
gos_raw_stream_export() {
  local disk=$1 method=$2 header
  if [[ $method == zstd ]] && ! command -v zstd >/dev/null; then method=gzip; fi
  gos_stream_filter compress "$method"
  header="$GOS_RAW_MAGIC size=$(gos_disk_size "$disk") compress=$method"$'\n'
  printf '%s' "$header"
  gos_raw_export "$disk" "$method"
}

# gos_raw_stream_import DISK: write the stream of gos_raw_stream_export on stdin onto DISK, as
# gos_raw_import does. Prints the exported disk's size in bytes. Dies on a stream of another kind.
gos_raw_stream_import() {
  local disk=$1 line size method
  # At most one line's worth: a foreign stream may hold no newline for gigabytes.
  IFS= read -r -n 128 line || gos_die "the import stream is empty or not a raw disk stream of this definition"
  [[ ${line%% size=*} == "$GOS_RAW_MAGIC" ]] ||
    gos_die "the import stream is not a raw disk stream of this definition (it starts with '${line:0:40}')"
  [[ $line =~ ^"$GOS_RAW_MAGIC"\ size=([0-9]+)\ compress=(zstd|gzip|none)$ ]] ||
    gos_die "the import stream has a damaged header: '$line'"
  size=${BASH_REMATCH[1]} method=${BASH_REMATCH[2]}
  gos_raw_import "$disk" "$method" "$size"
  printf '%s\n' "$size"
}
