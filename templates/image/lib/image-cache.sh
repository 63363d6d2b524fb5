# shellcheck shell=bash disable=SC2034
# The image cache of the 'image' template: each variant's IMAGE (a path on the node or a URL)
# is copied or downloaded once into CACHE_DIR as <sha256>.image, checked against the variant's
# SHA256 and probed (format, virtual size, partitions, filesystems) into <sha256>.info before it
# is renamed into place, so a create never sees a half-written or unverified image. An entry is
# locked (flock) while it is fetched (exclusive) and while it is read (shared); entries unused for
# CACHE_MAX_AGE_DAYS are removed by later creates when nobody holds them.
# Sourced by lib/steps.sh; uses the runtime's gos_* helpers and cleanup stack.

# Set by img_obtain (and img_read_info).
# (IMG_PART_* are indexed by partition number.)
IMG_FILE='' IMG_FORMAT='' IMG_VSIZE='' IMG_PTTYPE=''
IMG_PARTS=() IMG_PART_START=() IMG_PART_SECTORS=() IMG_PART_FS=()

# img_settings: every setting with its default and its form checked (gos_settings, from the
# template's settings table in lib/settings.sh).
img_settings() {
  gos_settings
  SHA256=${SHA256,,}
}

# img_variant_problem: why the variant's image settings are unusable (empty when they are fine).
img_variant_problem() {
  local v=${GOS_VARIANT:-default}
  # shellcheck disable=SC2153 # FORMAT is a setting: lib/settings.sh assigns it
  if [[ -z $IMAGE ]]; then
    printf "variant '%s' has no IMAGE: set one with 'ganeti-os add-variant %s --set IMAGE=PATH-OR-URL --set SHA256=...'" "$v" "$v"
  elif [[ ! $SHA256 =~ ^[0-9a-f]{64}$ ]]; then
    printf "variant '%s' has no valid SHA256 ('%s'): set the image's published checksum with 'ganeti-os add-variant %s --set SHA256=...' (sha256sum FILE)" "$v" "$SHA256" "$v"
  elif [[ ! $FORMAT =~ ^(auto|qcow2|raw|xz|zst)$ ]]; then
    printf "variant '%s' has an unsupported FORMAT '%s': use auto, qcow2, raw, xz or zst" "$v" "$FORMAT"
  elif [[ ! $ROOT_PARTITION =~ ^(auto|[1-9][0-9]{0,2})$ ]]; then
    printf "variant '%s' has an invalid ROOT_PARTITION '%s': use auto or a partition number" "$v" "$ROOT_PARTITION"
  elif [[ -n $USER_DATA && ! -r $USER_DATA ]]; then
    printf "variant '%s': its USER_DATA file %s cannot be read on this node" "$v" "$USER_DATA"
  fi
}

img_is_url() {
  [[ $1 =~ ^(https?|ftp|file):// ]]
}

# img_curl ARG...: curl with the download proxy (and only for this command).
img_curl() {
  command -v curl >/dev/null || gos_die "curl is needed to download $IMAGE (apt-get install curl), or copy the image to the node and set IMAGE to its path"
  gos_node_proxy
  if [[ -n $PROXY ]]; then
    curl --proxy "$PROXY" "$@"
  else
    curl --noproxy '*' "$@"
  fi
}

# img_source_reachable: can IMAGE be read (a file) or fetched (a URL) from this node?
img_source_reachable() {
  if ! img_is_url "$IMAGE"; then
    [[ -f $IMAGE && -r $IMAGE ]]
  elif [[ $IMAGE == file://* ]]; then
    [[ -f ${IMAGE#file://} && -r ${IMAGE#file://} ]]
  else
    img_curl --silent --fail --location --head --max-time 30 --output /dev/null -- "$IMAGE"
  fi
}

# img_fetch DEST: copy or download IMAGE into DEST.
img_fetch() {
  local dest=$1 src=$IMAGE
  if [[ $src == file://* ]]; then src=${src#file://}; fi
  if img_is_url "$src"; then
    gos_log "downloading $src${PROXY:+ (proxy $PROXY)}"
    img_curl --silent --show-error --fail --location --retry 3 --connect-timeout 60 --max-time "$DOWNLOAD_TIMEOUT" \
      --output "$dest" -- "$src" || gos_die "could not download $src (curl): check the URL, the node's network and PROXY"
  else
    [[ -f $src && -r $src ]] || gos_die "the image $src of variant '${GOS_VARIANT:-default}' is not a readable file on this node"
    gos_log "copying $src into the image cache"
    cp --sparse=always --reflink=auto -- "$src" "$dest" || gos_die "could not copy $src into the image cache ($CACHE_DIR)"
  fi
}

# img_magic FILE: the format its first bytes show: qcow2, xz, zst, or raw when it holds a
# partition table or a filesystem; empty when unknown.
img_magic() {
  local head
  head=$(od -An -tx1 -N8 -- "$1" | tr -d ' \n')
  case $head in
    514649fb*) printf qcow2 ;;
    fd377a585a00*) printf xz ;;
    28b52ffd*) printf zst ;;
    *)
      if [[ -n $(blkid -p -o value -s PTTYPE -- "$1" 2>/dev/null) || -n $(blkid -p -o value -s TYPE -- "$1" 2>/dev/null) ]]; then
        printf raw
      fi
      ;;
  esac
}

# img_decompress FORMAT FILE: the raw bytes of a compressed image on stdout.
img_decompress() {
  case $1 in
    xz) xz --decompress --stdout --threads=0 -- "$2" ;;
    zst) zstd --decompress --stdout --quiet -- "$2" ;;
    *) gos_die "img_decompress: unexpected format $1" ;;
  esac
}

# img_extract FORMAT FILE OUT OFFSET BYTES: copy BYTES raw bytes from OFFSET of the image into
# OUT at the same offset (OUT is a sparse skeleton of the disk, for probing).
img_extract() {
  local format=$1 file=$2 out=$3 offset=$4 bytes=$5
  case $format in
    raw | qcow2)
      # qemu-img reads qcow2 (and raw) through its block layer; offsets in whole sectors.
      # (qemu-img 7.2 counts skipped blocks in count: ask for both, keep BYTES.)
      rm -f -- "$out.part"
      qemu-img dd -f "$format" -O raw bs=512 skip=$((offset / 512)) count=$(((offset + bytes) / 512)) if="$file" of="$out.part" 2>/dev/null ||
        gos_die "could not read the image $file at byte $offset (qemu-img dd)"
      dd if="$out.part" of="$out" bs=512 seek=$((offset / 512)) iflag=count_bytes count="$bytes" conv=notrunc status=none
      rm -f -- "$out.part"
      ;;
    xz | zst)
      # A pipe cannot seek: read through to OFFSET (once per cache entry).
      { img_decompress "$format" "$file" 2>/dev/null || true; } |
        dd of="$out" bs=512 seek=$((offset / 512)) iflag=fullblock,skip_bytes,count_bytes skip="$offset" count="$bytes" conv=notrunc status=none ||
        true
      ;;
  esac
}

# img_probe FILE FORMAT INFO: write what create needs to know about the image into INFO:
# its format, virtual size (bytes), partition table and each partition's start, length
# (sectors) and filesystem type. Unknown or unsupported images are refused here.
img_probe() {
  local file=$1 format=$2 info=$3 vsize json skel nr start sectors type inner
  case $format in
    qcow2 | raw)
      json=$(qemu-img info --output=json -f "$format" -- "$file" 2>/dev/null) || gos_die "qemu-img cannot read the image $IMAGE as $format"
      if [[ $json == *'"backing-filename"'* || $json == *'"data-file"'* ]]; then
        gos_die "the image $IMAGE refers to another file (backing or external data file): only self-contained images are accepted"
      fi
      # The image's own size is the top-level member (indented by four spaces): newer QEMU
      # (trixie's 10, not bookworm's 7.2) also lists the file under it as a child with a
      # virtual-size of its own (the qcow2 file's length), first.
      vsize=$(printf '%s' "$json" | sed -n 's/^    "virtual-size": *\([0-9]*\),*$/\1/p' | head -n 1)
      ;;
    xz)
      vsize=$(xz --robot --list -- "$file" 2>/dev/null | awk '$1 == "totals" { print $5 }')
      ;;
    zst)
      vsize=$(img_decompress zst "$file" | wc -c) || gos_die "could not decompress the image $IMAGE (zstd)"
      ;;
  esac
  [[ $vsize =~ ^[1-9][0-9]*$ ]] || gos_die "could not tell the size of the image $IMAGE ($format)"
  ((vsize % 512 == 0)) || gos_die "the image $IMAGE is $vsize bytes, not a whole number of 512-byte sectors"
  skel=$info.skel
  truncate -s "$vsize" -- "$skel"
  img_extract "$format" "$file" "$skel" 0 $((vsize < 1048576 ? vsize : 1048576))
  if [[ $format == xz || $format == zst ]]; then
    inner=$(img_magic "$skel")
    [[ $inner != qcow2 && $inner != xz && $inner != zst ]] ||
      gos_die "the image $IMAGE is a $format-compressed $inner image: only compressed raw images are streamed (decompress it, or use the $inner file)"
  fi
  {
    printf 'format=%s\nvsize=%s\n' "$format" "$vsize"
    type=$(blkid -p -o value -s PTTYPE -- "$skel" 2>/dev/null || true)
    printf 'pttype=%s\n' "${type:-none}"
    if [[ $type == dos || $type == gpt ]]; then
      while read -r nr start sectors; do
        [[ $nr =~ ^[0-9]+$ ]] || continue
        # The first MiB of each partition holds every superblock blkid looks for.
        img_extract "$format" "$file" "$skel" $((start * 512)) $((sectors * 512 < 1048576 ? sectors * 512 : 1048576))
        type=$(blkid -p -o value -s TYPE -O $((start * 512)) -S $((sectors * 512)) -- "$skel" 2>/dev/null || true)
        printf 'part=%s %s %s %s\n' "$nr" "$start" "$sectors" "${type:-unknown}"
      done < <(partx --show --noheadings --output NR,START,SECTORS -- "$skel" 2>/dev/null || true)
    fi
  } >"$info.tmp" || gos_die "could not probe the image $IMAGE"
  rm -f -- "$skel"
  mv -f -- "$info.tmp" "$info"
}

# img_read_info INFO: the probe's results into IMG_FORMAT, IMG_VSIZE, IMG_PTTYPE, IMG_PARTS and
# IMG_PART_START/SECTORS/FS.
img_read_info() {
  local line key value nr start sectors type
  IMG_PARTS=()
  IMG_PART_START=() IMG_PART_SECTORS=() IMG_PART_FS=()
  while IFS= read -r line; do
    key=${line%%=*} value=${line#*=}
    case $key in
      format) IMG_FORMAT=$value ;;
      vsize) IMG_VSIZE=$value ;;
      pttype) IMG_PTTYPE=$value ;;
      part)
        read -r nr start sectors type <<<"$value"
        IMG_PARTS+=("$nr")
        IMG_PART_START[nr]=$start IMG_PART_SECTORS[nr]=$sectors IMG_PART_FS[nr]=$type
        ;;
    esac
  done <"$1"
  [[ -n $IMG_FORMAT && -n $IMG_VSIZE ]] || gos_die "the cache entry $1 is damaged: remove it and run again"
}

# img_age_cache: remove entries unused for CACHE_MAX_AGE_DAYS that no create is reading.
img_age_cache() {
  local f sha lock fd
  ((CACHE_MAX_AGE_DAYS > 0)) || return 0
  while IFS= read -r f; do
    sha=$(basename -- "$f" .image)
    [[ $sha =~ ^[0-9a-f]{64}$ && $sha != "$SHA256" ]] || continue
    lock=$CACHE_DIR/.$sha.lock
    exec {fd}>>"$lock" || continue
    if flock --nonblock --exclusive "$fd"; then
      rm -f -- "$CACHE_DIR/$sha.image" "$CACHE_DIR/$sha.info" "$lock"
      gos_log "removed $sha.image from the image cache (unused for more than $CACHE_MAX_AGE_DAYS days)"
    fi
    exec {fd}>&-
  done < <(find "$CACHE_DIR" -maxdepth 1 -name '*.image' -type f -mtime "+$CACHE_MAX_AGE_DAYS" 2>/dev/null)
  # Downloads interrupted by a crash leave their temporary files behind.
  find "$CACHE_DIR" -maxdepth 1 -name '.*.tmp.*' -type f -mmin +1440 -delete 2>/dev/null || true
}

# img_close_fd FD: close a descriptor (a lock held through it goes with it).
img_close_fd() {
  eval "exec $1>&-"
}

# img_obtain: the variant's image, verified and probed, from the cache (fetched into it first if
# needed). Sets IMG_FILE and the IMG_* facts; holds a shared lock on the entry until exit so that
# no other create ages it out meanwhile. Refuses a bad image before anything else is touched.
img_obtain() {
  local problem entry info lock fd tmp sum detected
  problem=$(img_variant_problem)
  [[ -z $problem ]] || gos_die "$problem"
  mkdir -p -- "$CACHE_DIR" || gos_die "could not create the image cache $CACHE_DIR"
  entry=$CACHE_DIR/$SHA256.image info=$CACHE_DIR/$SHA256.info lock=$CACHE_DIR/.$SHA256.lock
  exec {fd}>>"$lock" || gos_die "could not open the cache lock $lock"
  # Closing the descriptor at exit releases the lock.
  gos_push_cleanup img_close_fd "$fd"
  # Readers share the entry; only a fetch holds it alone (and creates reading it never wait
  # for each other).
  flock --shared --timeout "$DOWNLOAD_TIMEOUT" "$fd" || gos_die "timed out waiting for another create to fetch $IMAGE ($lock)"
  if [[ -f $entry && -f $info ]]; then
    gos_debug "image $SHA256 is cached"
  else
    flock --exclusive --timeout "$DOWNLOAD_TIMEOUT" "$fd" || gos_die "timed out waiting for another create to fetch $IMAGE ($lock)"
  fi
  if [[ -f $entry && -f $info ]]; then
    :
  else
    gos_fault fetch
    tmp=$(mktemp "$CACHE_DIR/.$SHA256.tmp.XXXXXX") || gos_die "could not create a file in $CACHE_DIR"
    gos_push_cleanup rm -f -- "$tmp" "$tmp.info" "$tmp.info.tmp" "$tmp.info.skel"
    img_fetch "$tmp"
    sum=$(sha256sum -- "$tmp" | cut -d ' ' -f 1) || gos_die "could not checksum $tmp"
    if [[ $sum != "$SHA256" ]]; then
      gos_die "checksum mismatch for $IMAGE: its SHA-256 is $sum, variant '${GOS_VARIANT:-default}' expects $SHA256 (the image was not cached and no disk was touched)"
    fi
    detected=$(img_magic "$tmp")
    [[ -n $detected ]] || gos_die "the image $IMAGE has an unknown format (neither qcow2, xz, zstd nor a raw disk with a partition table or filesystem); no disk was touched"
    if [[ $FORMAT != auto && $FORMAT != "$detected" ]]; then
      gos_die "variant '${GOS_VARIANT:-default}' says FORMAT=$FORMAT but the image $IMAGE is $detected; no disk was touched"
    fi
    img_probe "$tmp" "$detected" "$tmp.info"
    chmod 0644 -- "$tmp" "$tmp.info"
    mv -f -- "$tmp" "$entry"
    mv -f -- "$tmp.info" "$info"
    gos_log "cached $IMAGE as $entry ($detected)"
  fi
  touch -- "$entry"
  flock --shared "$fd" || gos_die "could not lock $entry"
  img_read_info "$info"
  if [[ $FORMAT != auto && $FORMAT != "$IMG_FORMAT" ]]; then
    gos_die "variant '${GOS_VARIANT:-default}' says FORMAT=$FORMAT but the cached image $entry is $IMG_FORMAT"
  fi
  IMG_FILE=$entry
  img_age_cache
}
