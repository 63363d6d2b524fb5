# shellcheck shell=bash
# A whole disk as a compressed raw stream, for export and import: one header line
#   GANETI-OS-RAW 2 size=<bytes> compress=<zstd|gzip|none>
# then, compressed, the disk's non-zero data as records (offset and length as big-endian 64-bit
# numbers, then the bytes) and an end record (offset = the disk's size, length 0). Holes of a
# file-backed disk are skipped without being read (SEEK_DATA/SEEK_HOLE), zero blocks are left
# out, so export and import cost what the disk holds, not its size. Import refuses a disk
# smaller than the exported one and a damaged or truncated stream, never writes past the disk's
# end, never truncates a file-backed disk (its zeros become holes), and zeroes a block device
# where the stream has no data. The record coder is Python 3 (present on every Ganeti node).
# Sourced by a template's lib/steps.sh; uses the runtime's gos_* helpers.

GOS_RAW_MAGIC='GANETI-OS-RAW 2'

# The record coder: python3 -c "$GOS_RAW_CODER" export DEVICE SIZE | import DEVICE SIZE.
# Exit status: 0 done, 2 the stream holds more than SIZE bytes or is damaged, 3 it ended early.
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

def read_exact(inp, n):
    parts, got = [], 0
    while got < n:
        chunk = inp.read(n - got)
        if not chunk:
            sys.exit(3)
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)

def zero(fd, start, end, is_block):
    """Zeros where the stream has no data (a file was punched to zeros before)."""
    if not is_block or end <= start:
        return
    try:
        import fcntl
        fcntl.ioctl(fd, 0x127f, struct.pack("QQ", start, end - start))  # BLKZEROOUT
        return
    except OSError:
        pass
    while start < end:
        n = min(BLOCK, end - start)
        os.pwrite(fd, ZERO[:n], start)
        start += n

def import_():
    fd = os.open(dev, os.O_WRONLY)
    is_block = stat.S_ISBLK(os.fstat(fd).st_mode)
    inp = sys.stdin.buffer
    done = 0
    while True:
        off, length = REC.unpack(read_exact(inp, REC.size))
        if length == 0:
            if off != size:
                sys.exit(2)
            zero(fd, done, size, is_block)
            break
        if off < done or off + length > size:
            sys.exit(2)
        zero(fd, done, off, is_block)
        buf = read_exact(inp, length)
        if os.pwrite(fd, buf, off) != length:
            sys.exit("short write at byte %d" % off)
        done = off + length
    os.fsync(fd)
    if inp.read(1):
        sys.exit(2)

export() if mode == "export" else import_()
'

# gos_raw_compressor KIND: the command that compresses stdin to stdout, one word per line
# (KIND: zstd, gzip, none); zstd falls back to gzip on a node without it.
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
# announced on EXP_SIZE_FD (an upper bound: the stream holds only data, compressed).
gos_raw_export() {
  local dev=$1 kind=$2 size
  local -a comp
  command -v python3 >/dev/null || gos_die "python3 is needed to export a disk (it is part of every Ganeti node)"
  mapfile -t comp < <(gos_raw_compressor "$kind")
  if [[ ${comp[0]} == gzip ]]; then kind=gzip; fi
  if [[ ${comp[0]} == cat ]]; then kind=none; fi
  size=$(gos_disk_size "$dev")
  gos_announce_size "$size"
  gos_debug "exporting $dev ($size bytes, $kind)"
  printf '%s size=%s compress=%s\n' "$GOS_RAW_MAGIC" "$size" "$kind"
  python3 -c "$GOS_RAW_CODER" export "$dev" "$size" | "${comp[@]}" || gos_die "could not read $dev"
}

# gos_raw_import DEVICE: write the stream on stdin onto DEVICE. Prints the exported disk's size.
gos_raw_import() {
  local dev=$1 line magic size kind disk_size rc=0
  local -a decomp
  command -v python3 >/dev/null || gos_die "python3 is needed to import a disk (it is part of every Ganeti node)"
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
  if [[ -f $dev ]] && ! fallocate --punch-hole --keep-size --offset 0 --length "$size" -- "$dev" 2>/dev/null; then
    # No hole punching here: zeros are written instead, as on a block device.
    dd if=/dev/zero of="$dev" bs=4M iflag=count_bytes count="$size" conv=notrunc status=none || gos_die "could not clear $dev"
  fi
  "${decomp[@]}" | python3 -c "$GOS_RAW_CODER" import "$dev" "$size" || rc=$?
  case $rc in
    0) ;;
    2) gos_die "the import stream is damaged (a record beyond the $size bytes its header announces, or data after its end)" ;;
    3) gos_die "the import stream ended before its end record (truncated stream)" ;;
    *) gos_die "could not write the import stream onto $dev (damaged or truncated stream?)" ;;
  esac
  printf '%s\n' "$size"
}
