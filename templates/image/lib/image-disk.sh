# shellcheck shell=bash
# Disks of the 'image' template: the image written onto disk 0 without ever truncating or
# shrinking a file-backed disk, the root partition grown to the disk (GPT backup header moved
# to the disk's end first), the root filesystem grown through a loop device limited to its
# partition. Partitions are reached by byte range (losetup --offset/--sizelimit from the
# current partition table): no kpartx, no device-mapper, no partition device nodes.
# Sourced by lib/steps.sh; every resource goes on the runtime's cleanup stack.

IMG_ROOT='' IMG_ROOT_FS=''

# img_scan_disk DISK: the partitions of an instance disk, into the same IMG_PTTYPE, IMG_PARTS
# and IMG_PART_START/SECTORS/FS that img_read_info gives for an image.
img_scan_disk() {
  local disk=$1 nr start sectors type
  IMG_PARTS=()
  IMG_PART_START=() IMG_PART_SECTORS=() IMG_PART_FS=()
  IMG_PTTYPE=$(blkid -p -o value -s PTTYPE -- "$disk" 2>/dev/null || true)
  IMG_PTTYPE=${IMG_PTTYPE:-none}
  [[ $IMG_PTTYPE == dos || $IMG_PTTYPE == gpt ]] || return 0
  while read -r nr start sectors; do
    [[ $nr =~ ^[0-9]+$ ]] || continue
    type=$(blkid -p -o value -s TYPE -O $((start * 512)) -S $((sectors * 512)) -- "$disk" 2>/dev/null || true)
    IMG_PARTS+=("$nr")
    IMG_PART_START[nr]=$start IMG_PART_SECTORS[nr]=$sectors IMG_PART_FS[nr]=${type:-unknown}
  done < <(partx --show --noheadings --output NR,START,SECTORS -- "$disk" 2>/dev/null || true)
}

img_is_linux_fs() {
  [[ $1 == ext2 || $1 == ext3 || $1 == ext4 || $1 == xfs || $1 == btrfs ]]
}

img_is_ext() {
  [[ $1 == ext2 || $1 == ext3 || $1 == ext4 ]]
}

# img_pick_root WHAT: the root partition among IMG_PARTS into IMG_ROOT and its filesystem type
# into IMG_ROOT_FS: ROOT_PARTITION, or the largest partition holding a Linux filesystem.
# Empty IMG_ROOT when there is none (WHAT names the image or disk in messages).
img_pick_root() {
  local what=$1 nr best=''
  IMG_ROOT='' IMG_ROOT_FS=''
  [[ $IMG_PTTYPE == dos || $IMG_PTTYPE == gpt ]] ||
    gos_die "$what has no partition table (found: $IMG_PTTYPE): this definition installs partitioned cloud images"
  if [[ $ROOT_PARTITION != auto ]]; then
    [[ -n ${IMG_PART_START[$ROOT_PARTITION]-} ]] ||
      gos_die "ROOT_PARTITION=$ROOT_PARTITION, but $what has no partition $ROOT_PARTITION (it has: ${IMG_PARTS[*]:-none})"
    IMG_ROOT=$ROOT_PARTITION IMG_ROOT_FS=${IMG_PART_FS[$ROOT_PARTITION]}
    return 0
  fi
  for nr in "${IMG_PARTS[@]}"; do
    img_is_linux_fs "${IMG_PART_FS[$nr]}" || continue
    if [[ -z $best ]] || ((IMG_PART_SECTORS[nr] > IMG_PART_SECTORS[best])); then best=$nr; fi
  done
  if [[ -n $best ]]; then IMG_ROOT=$best IMG_ROOT_FS=${IMG_PART_FS[$best]}; fi
  gos_debug "root partition of $what: ${IMG_ROOT:-none} (${IMG_ROOT_FS:-?})"
}

# img_write DISK: the cached image onto DISK. qcow2 and raw through qemu-img convert -n (the
# disk is neither created nor truncated; zeros become holes on a file, unmapped/zeroed blocks on
# a device), xz and zst streamed with dd (on a file: holes punched first, zeros skipped).
img_write() {
  local disk=$1 size
  size=$(gos_disk_size "$disk")
  case $IMG_FORMAT in
    qcow2 | raw)
      qemu-img convert -n -W -f "$IMG_FORMAT" -O raw -- "$IMG_FILE" "$disk" ||
        gos_die "could not write the image onto $disk (qemu-img convert)"
      ;;
    xz | zst)
      local conv=notrunc,fsync
      if [[ -f $disk ]] && fallocate --punch-hole --keep-size --offset 0 --length "$IMG_VSIZE" -- "$disk" 2>/dev/null; then
        # The file reads as zeros now: zeros are skipped, holes stay holes.
        conv=notrunc,sparse,fsync
      fi
      img_decompress "$IMG_FORMAT" "$IMG_FILE" |
        dd of="$disk" bs=1M iflag=fullblock conv="$conv" status=none ||
        gos_die "could not write the image onto $disk ($IMG_FORMAT stream)"
      ;;
    *) gos_die "unsupported image format '$IMG_FORMAT'" ;;
  esac
  ((size == $(gos_disk_size "$disk"))) || gos_die "bug: the size of $disk changed while the image was written"
  # A partition table left at the end of the disk by an earlier install would confuse tools.
  if ((size - IMG_VSIZE >= 1048576)); then
    dd if=/dev/zero of="$disk" bs=512 seek=$(((size - 1048576) / 512)) count=2048 conv=notrunc,fsync status=none ||
      gos_die "could not clear the end of $disk"
  fi
}

# img_sfdisk ARG...: sfdisk on an instance disk (no re-read, nobody told: nothing maps it).
img_sfdisk() {
  sfdisk --quiet --no-reread --no-tell-kernel "$@"
}

# img_fix_gpt DISK: move the GPT backup header and table to the end of DISK (after an image
# smaller than the disk was written, they sit at the image's end).
img_fix_gpt() {
  local disk=$1
  [[ $(blkid -p -o value -s PTTYPE -- "$disk" 2>/dev/null) == gpt ]] || return 0
  img_sfdisk --relocate gpt-bak-std -- "$disk" >/dev/null 2>&1 ||
    gos_die "could not move the GPT backup header of $disk to its end (sfdisk --relocate)"
}

# img_attach_part DISK NR VAR [ro]: a loop device for partition NR of DISK, as the current
# partition table has it; detached at exit. Its path in VAR.
img_attach_part() {
  gos_attach_range "$1" $((IMG_PART_START[$2] * 512)) $((IMG_PART_SECTORS[$2] * 512)) "$3" "${4-}"
}

# img_mount DEV DIR FSTYPE: mount a guest filesystem on DIR (no devices, no setuid, no
# execution), unmounted at exit.
img_mount() {
  local opts=nodev,nosuid,noexec
  if [[ $3 == xfs ]]; then opts+=,nouuid; fi
  gos_mount "$1" "$2" "$opts" "$3"
}

# img_check_ext DEV: e2fsck an ext2/3/4 filesystem (fixes what it can; fails on what it cannot).
img_check_ext() {
  local rc=0
  e2fsck -f -y -- "$1" >/dev/null 2>&1 || rc=$?
  ((rc < 4)) || gos_die "the root filesystem has errors e2fsck cannot fix (exit $rc)"
}

# img_grow_root DISK TMP: grow partition IMG_ROOT to the free space after it (a GPT's backup
# header must already be at the disk's end: img_fix_gpt), then its
# filesystem (ext2/3/4 with resize2fs; xfs and btrfs mounted under TMP with their own tools when
# this node has them). Anything left ungrown is logged: cloud-init grows it at first boot.
img_grow_root() {
  local disk=$1 tmp=$2 nr=$IMG_ROOT before dev
  [[ -n $nr ]] || return 0
  before=${IMG_PART_SECTORS[$nr]}
  printf ',+\n' | img_sfdisk -N "$nr" -- "$disk" >/dev/null 2>&1 ||
    gos_die "could not grow partition $nr of $disk (sfdisk)"
  img_scan_disk "$disk"
  if ((IMG_PART_SECTORS[nr] <= before)); then
    gos_log "partition $nr was not grown: no free space follows it on the disk"
    return 0
  fi
  gos_log "grew partition $nr from $((before / 2048)) MiB to $((IMG_PART_SECTORS[nr] / 2048)) MiB"
  gos_fault grow-fs
  case $IMG_ROOT_FS in
    ext2 | ext3 | ext4)
      img_attach_part "$disk" "$nr" dev
      img_check_ext "$dev"
      resize2fs -- "$dev" >/dev/null 2>&1 || gos_die "could not grow the root filesystem (resize2fs)"
      gos_pop_cleanup
      ;;
    xfs | btrfs)
      local tool=xfs_growfs
      if [[ $IMG_ROOT_FS == btrfs ]]; then tool=btrfs; fi
      if ! command -v "$tool" >/dev/null; then
        gos_log "the $IMG_ROOT_FS root filesystem was not grown ($tool is not installed here): cloud-init grows it at first boot"
        return 0
      fi
      img_attach_part "$disk" "$nr" dev
      img_mount "$dev" "$tmp/grow" "$IMG_ROOT_FS"
      if [[ $IMG_ROOT_FS == xfs ]]; then
        xfs_growfs -- "$tmp/grow" >/dev/null || gos_die "could not grow the root filesystem (xfs_growfs)"
      else
        btrfs filesystem resize max "$tmp/grow" >/dev/null || gos_die "could not grow the root filesystem (btrfs)"
      fi
      gos_pop_cleanup
      gos_pop_cleanup
      ;;
    *) gos_log "the root filesystem (${IMG_ROOT_FS:-unknown}) was not grown: cloud-init grows it at first boot" ;;
  esac
}

IMG_ESP_TYPE=c12a7328-f81f-11d2-ba4b-00a0c93ec93b

# img_firmware_text DISK: one line saying which firmware DISK (an image just written) boots
# under, read from what it carries: BIOS when its MBR holds boot code, UEFI when a GPT EFI system
# partition (by its type GUID) holds the removable-media path /EFI/BOOT/BOOTX64.EFI (read with
# mtools when the node has them; nothing is mounted). The image decides, not this definition.
img_firmware_text() {
  local disk=$1 bios='' uefi='' esp='' nr type start why=''
  if [[ -n $(head -c 440 -- "$disk" | tr -d '\0' | head -c 1) ]]; then bios=yes; fi
  if [[ $(blkid -p -o value -s PTTYPE -- "$disk" 2>/dev/null) == gpt ]]; then
    while read -r nr type start; do
      if [[ ${type,,} == "$IMG_ESP_TYPE" ]]; then esp=$nr; break; fi
    done < <(partx --show --noheadings --output NR,TYPE,START -- "$disk" 2>/dev/null || true)
  fi
  if [[ -z $esp ]]; then
    why="the image has no EFI system partition"
  elif ! command -v mdir >/dev/null; then
    why="the image has an EFI system partition (partition $esp), not read: mtools is not installed here"
    uefi=maybe
  elif MTOOLS_SKIP_CHECK=1 mdir -b -i "$disk@@$((start * 512))" ::/EFI/BOOT/BOOTX64.EFI >/dev/null 2>&1; then
    uefi=yes
  else
    why="the EFI system partition of the image (partition $esp) has no /EFI/BOOT/BOOTX64.EFI"
  fi
  if [[ $bios == yes && $uefi == yes ]]; then
    printf 'disk 0 boots under BIOS and UEFI, as the image does (boot code in its MBR; /EFI/BOOT/BOOTX64.EFI on its EFI system partition, partition %s)' "$esp"
  elif [[ $uefi == yes ]]; then
    printf 'disk 0 boots under UEFI only, as the image does (/EFI/BOOT/BOOTX64.EFI on partition %s; no boot code in its MBR)' "$esp"
  elif [[ $bios == yes && $uefi == maybe ]]; then
    printf 'disk 0 boots under BIOS, as the image does (boot code in its MBR); under UEFI perhaps: %s' "$why"
  elif [[ $bios == yes ]]; then
    printf 'disk 0 boots under BIOS only, as the image does (boot code in its MBR; %s)' "$why"
  else
    printf 'disk 0 boots under no firmware by itself, as the image is: no boot code in its MBR, and %s (a hypervisor that boots a kernel of its own, kernel_path, still can)' "$why"
  fi
}
