# shellcheck shell=bash
# Disks of the 'debian' template: partitions reached by byte range (losetup --offset/--sizelimit
# from the partition table), never through kpartx, device-mapper or partition device nodes, so
# there are no names to guess and no udev races; GRUB for BIOS written without grub-install.
# Sourced by lib/steps.sh. Every resource acquired here is released by the runtime's cleanup
# stack, on success and on failure alike.

# Layout written by create: root is always partition 1, so a host kernel's root=/dev?da1 finds it.
#   msdos: partition 1 = root from 1 MiB to the end; GRUB's core image in the gap after the MBR.
#   gpt:   partition 2 = BIOS boot partition at 1-2 MiB (GRUB's core image), partition 1 = root
#          from 2 MiB to the end (firmware=bios, and every gpt disk made before UEFI support).
#   gpt with an EFI system partition (firmware uefi or both): partitions 2 as above, 3 = the ESP
#          (FAT, 32 MiB) at 2-34 MiB holding the signed shim and GRUB at the removable-media
#          path /EFI/BOOT/BOOTX64.EFI (no NVRAM entry needed), partition 1 = root from 34 MiB.
#   none:  the filesystem fills the disk; no boot loader.
DEB_SECTOR=512
DEB_MIB_SECTORS=2048
DEB_BIOS_BOOT_TYPE=21686148-6449-6E6F-744E-656564454649
DEB_ESP_TYPE=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
DEB_ESP_START=4096 DEB_ESP_SECTORS=65536
# Set by deb_locate_root, read by the steps (DEB_ESP_OFFSET empty: no EFI system partition).
# shellcheck disable=SC2034
DEB_STYLE='' DEB_ROOT_OFFSET='' DEB_ROOT_SIZE='' DEB_ESP_OFFSET='' DEB_ESP_SIZE=''

# deb_partition DISK STYLE [esp]: write a fresh partition table (1 MiB aligned) on DISK; with
# "esp" (gpt only), the EFI system partition 3 goes before the root partition.
deb_partition() {
  local disk=$1 style=$2 esp=${3-} script
  case $style in
    msdos) script=$'label: dos\nstart=2048, type=83, bootable\n' ;;
    gpt)
      if [[ $esp == esp ]]; then
        script=$'label: gpt\n1 : start='"$((DEB_ESP_START + DEB_ESP_SECTORS))"$', type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root\n2 : start=2048, size=2048, type='"$DEB_BIOS_BOOT_TYPE"$', name=bios-boot\n3 : start='"$DEB_ESP_START, size=$DEB_ESP_SECTORS, type=$DEB_ESP_TYPE"$', name=esp\n'
      else
        script=$'label: gpt\n1 : start=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root\n2 : start=2048, size=2048, type='"$DEB_BIOS_BOOT_TYPE"$', name=bios-boot\n'
      fi
      ;;
    none)
      # Remove any old partition table so nothing mistakes the filesystem for a partitioned disk.
      wipefs --all --force --quiet -- "$disk" >/dev/null || gos_die "could not clear old signatures on $disk"
      return 0
      ;;
    *) gos_die "unknown partition style '$style'" ;;
  esac
  wipefs --all --force --quiet -- "$disk" >/dev/null || gos_die "could not clear old signatures on $disk"
  # No re-read and no kernel notification: partitions are reached by offset, not by device node.
  printf '%s' "$script" | sfdisk --quiet --no-reread --no-tell-kernel --wipe always --wipe-partitions always -- "$disk" >/dev/null 2>&1 ||
    gos_die "could not write a $style partition table on $disk (sfdisk)"
}

# deb_locate_root DISK: find the root filesystem of an instance disk. Sets DEB_STYLE (msdos, gpt,
# none), DEB_ROOT_OFFSET and DEB_ROOT_SIZE (bytes). Fails when DISK holds no partition table and
# no filesystem at its start.
deb_locate_root() {
  local disk=$1 pttype nr start sectors type
  # shellcheck disable=SC2034
  DEB_STYLE='' DEB_ROOT_OFFSET='' DEB_ROOT_SIZE='' DEB_ESP_OFFSET='' DEB_ESP_SIZE=''
  pttype=$(blkid -p -o value -s PTTYPE -- "$disk" 2>/dev/null || true)
  case $pttype in
    dos) DEB_STYLE=msdos ;;
    gpt) DEB_STYLE=gpt ;;
    '')
      DEB_STYLE=none
      DEB_ROOT_OFFSET=0
      DEB_ROOT_SIZE=$(gos_disk_size "$disk")
      return 0
      ;;
    *) gos_die "disk $disk has a '$pttype' partition table, which this definition does not write" ;;
  esac
  # The size comes from the current table: a stale, smaller limit makes the filesystem look broken.
  while read -r nr start sectors type; do
    if [[ $nr == 1 ]]; then
      DEB_ROOT_OFFSET=$((start * DEB_SECTOR))
      # shellcheck disable=SC2034
      DEB_ROOT_SIZE=$((sectors * DEB_SECTOR))
    elif [[ $nr == 3 && $DEB_STYLE == gpt && ${type^^} == "$DEB_ESP_TYPE" ]]; then
      # shellcheck disable=SC2034
      DEB_ESP_OFFSET=$((start * DEB_SECTOR)) DEB_ESP_SIZE=$((sectors * DEB_SECTOR))
    fi
  done < <(partx --show --noheadings --output NR,START,SECTORS,TYPE -- "$disk" 2>/dev/null || true)
  [[ -n $DEB_ROOT_OFFSET ]] || gos_die "disk $disk has a $DEB_STYLE partition table without partition 1"
}

# deb_mount_ro DEV DIR: mount a filesystem read-only without writing to it (a snapshot of a
# running instance may need journal recovery: then it is read without replaying the journal).
deb_mount_ro() {
  local dev=$1 dir=$2
  mkdir -p -- "$dir"
  if mount -o ro -- "$dev" "$dir" 2>/dev/null; then
    gos_push_cleanup gos_umount "$dir"
    return 0
  fi
  mount -o ro,noload -- "$dev" "$dir" || gos_die "could not mount $dev read-only"
  gos_push_cleanup gos_umount "$dir"
}

# deb_fs_type DEV: the filesystem type on DEV (empty when none is recognised).
deb_fs_type() {
  blkid -p -o value -s TYPE -- "$1" 2>/dev/null || true
}

# deb_mkfs TYPE DEV UUID LABEL: make a filesystem.
deb_mkfs() {
  local type=$1 dev=$2 uuid=$3 label=$4
  case $type in
    ext2 | ext3 | ext4)
      "mkfs.$type" -F -q -U "$uuid" -L "$label" -- "$dev" >/dev/null || gos_die "could not make an $type filesystem on $dev"
      ;;
    *) gos_die "unsupported filesystem type '$type'" ;;
  esac
}

deb_new_uuid() {
  cat /proc/sys/kernel/random/uuid
}

# deb_write_at DISK BYTE_OFFSET FILE [COUNT]: copy FILE (or its first COUNT bytes) into DISK.
deb_write_at() {
  local disk=$1 offset=$2 file=$3 count=${4-}
  if [[ -n $count ]]; then
    dd if="$file" of="$disk" bs=1 count="$count" seek="$offset" conv=notrunc,fsync status=none
  else
    dd if="$file" of="$disk" bs=512 seek="$((offset / DEB_SECTOR))" conv=notrunc,fsync status=none
  fi || gos_die "could not write $file into $disk at byte $offset"
}

# deb_write_u64 DISK BYTE_OFFSET VALUE: a little-endian 64-bit number.
deb_write_u64() {
  local disk=$1 offset=$2 value=$3 i bytes=''
  for ((i = 0; i < 8; i++)); do
    printf -v bytes '%s\\x%02x' "$bytes" $(((value >> (8 * i)) & 255))
  done
  # shellcheck disable=SC2059 # the format is the escaped bytes
  printf "$bytes" | dd of="$disk" bs=1 seek="$offset" conv=notrunc,fsync status=none ||
    gos_die "could not write to $disk at byte $offset"
}

# deb_install_grub DISK STYLE ROOT: put GRUB for BIOS on DISK (root filesystem mounted at ROOT,
# holding the grub-pc-bin modules). Builds the core image with the instance's own grub-mkimage,
# writes boot.img's code into the MBR and the core image into the MBR gap (msdos) or the BIOS
# boot partition (gpt), and points both at each other. No grub-install, no partition devices.
deb_install_grub() {
  local disk=$1 style=$2 root=$3 sector room part mods=/usr/lib/grub/i386-pc core_size
  [[ -f $root$mods/boot.img && -f $root$mods/diskboot.img ]] || gos_die "the instance has no GRUB for BIOS ($mods): install grub-pc"
  case $style in
    msdos) sector=1 room=$((DEB_MIB_SECTORS - 1)) part=msdos1 ;;
    gpt) sector=$DEB_MIB_SECTORS room=$DEB_MIB_SECTORS part=gpt1 ;;
    *) gos_die "a boot loader needs a partitioned disk (partition-style msdos or gpt), not '$style'" ;;
  esac
  mkdir -p -- "$root/boot/grub/i386-pc"
  cp -- "$root$mods"/*.mod "$root$mods"/*.lst "$root$mods"/*.img "$root/boot/grub/i386-pc/" ||
    gos_die "could not copy GRUB's modules into /boot/grub"
  chroot "$root" grub-mkimage -O i386-pc -d "$mods" -o /boot/grub/i386-pc/core.img -p "(hd0,$part)/boot/grub" \
    biosdisk part_msdos part_gpt ext2 search_fs_uuid ||
    gos_die "could not build GRUB's core image (grub-mkimage in the instance)"
  core_size=$(stat -c %s -- "$root/boot/grub/i386-pc/core.img")
  if ((core_size > room * DEB_SECTOR)); then
    gos_die "GRUB's core image ($core_size bytes) does not fit in the $((room * DEB_SECTOR)) bytes reserved for it"
  fi
  # boot.img's code only: bytes 440-511 hold the disk signature and the partition table.
  deb_write_at "$disk" 0 "$root$mods/boot.img" 440
  # boot.img loads the core image's first sector from GRUB_BOOT_MACHINE_KERNEL_SECTOR (0x5c);
  # that sector (diskboot.img) loads the rest from its blocklist (start at byte 0x1f4), whose
  # length grub-mkimage already filled in.
  deb_write_u64 "$disk" $((0x5c)) "$sector"
  deb_write_at "$disk" $((sector * DEB_SECTOR)) "$root/boot/grub/i386-pc/core.img"
  deb_write_u64 "$disk" $((sector * DEB_SECTOR + 0x1f4)) $((sector + 1))
}

# The signed boot files in the instance (shim-signed, grub-efi-amd64-signed): shim is signed by
# Microsoft's UEFI CA, GRUB and the kernel by Debian, so Secure Boot with Microsoft's keys holds.
DEB_SHIM=/usr/lib/shim/shimx64.efi.signed
DEB_MOK=/usr/lib/shim/mmx64.efi.signed
DEB_GRUB_EFI=/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed

# deb_install_efi DISK ROOT UUID: make the EFI system partition of DISK (deb_locate_root's
# DEB_ESP_OFFSET) anew: a FAT filesystem with the instance's signed shim as the removable-media
# path /EFI/BOOT/BOOTX64.EFI, its GRUB (grubx64.efi, which shim loads from its own directory) and
# MokManager beside it, and a grub.cfg that finds the root filesystem by UUID and reads its
# /boot/grub/grub.cfg. Built in a scratch image with mkfs.vfat and mtools, then written at the
# partition's offset: nothing is mounted, no grub-install, no NVRAM entry. No fallback (fbx64.efi):
# shim would otherwise try to write boot entries.
deb_install_efi() {
  local disk=$1 root=$2 uuid=$3 tmp img cfg
  [[ -n $DEB_ESP_OFFSET ]] || gos_die "disk $disk has no EFI system partition"
  [[ -f $root$DEB_SHIM && -f $root$DEB_GRUB_EFI ]] ||
    gos_die "the instance has no signed shim and GRUB for UEFI ($DEB_SHIM, $DEB_GRUB_EFI): install shim-signed and grub-efi-amd64-signed"
  command -v mkfs.vfat >/dev/null || gos_die "mkfs.vfat is missing on this node: install dosfstools"
  command -v mcopy >/dev/null || gos_die "mcopy is missing on this node: install mtools"
  gos_mktemp_dir tmp
  img=$tmp/esp.img cfg=$tmp/grub.cfg
  truncate -s "$DEB_ESP_SIZE" -- "$img" || gos_die "cannot make a scratch image in $tmp"
  mkfs.vfat -n EFI -- "$img" >/dev/null || gos_die "could not make the FAT filesystem of the EFI system partition (mkfs.vfat)"
  # Debian's signed GRUB looks for its configuration under its built-in prefix /EFI/debian, then
  # beside itself: both get this one.
  # shellcheck disable=SC2016 # GRUB expands $root and $prefix
  printf '%s\n' "search --no-floppy --fs-uuid --set=root $uuid" 'set prefix=($root)/boot/grub' 'configfile $prefix/grub.cfg' >"$cfg"
  export MTOOLS_SKIP_CHECK=1
  mmd -i "$img" ::/EFI ::/EFI/BOOT ::/EFI/debian || gos_die "could not make /EFI/BOOT on the EFI system partition (mtools)"
  local -a copies=("$root$DEB_SHIM" ::/EFI/BOOT/BOOTX64.EFI "$root$DEB_GRUB_EFI" ::/EFI/BOOT/grubx64.efi "$cfg" ::/EFI/BOOT/grub.cfg "$cfg" ::/EFI/debian/grub.cfg)
  if [[ -f $root$DEB_MOK ]]; then copies+=("$root$DEB_MOK" ::/EFI/BOOT/mmx64.efi); fi
  local i
  for ((i = 0; i < ${#copies[@]}; i += 2)); do
    mcopy -i "$img" -- "${copies[i]}" "${copies[i + 1]}" || gos_die "could not copy ${copies[i]#"$root"} to ${copies[i + 1]#::} on the EFI system partition (mtools)"
  done
  deb_write_at "$disk" "$DEB_ESP_OFFSET" "$img"
  rm -f -- "$img"
}

# --- layouts and block-level streams --------------------------------------------------------

# deb_layout_is_ours DISK: is DISK's partition table exactly one that create writes (msdos:
# partition 1 alone, from 1 MiB; gpt: partition 1 from 2 MiB and the BIOS boot partition 2 at
# 1-2 MiB, or with the EFI system partition 3 at 2-34 MiB, partition 1 from 34 MiB)? Partition 1 may end before the disk does (a grown disk). When not, DEB_LAYOUT_WHY
# says what else is there. Anything else must travel whole. Needs DEB_STYLE (deb_locate_root).
# shellcheck disable=SC2034
DEB_LAYOUT_WHY=''
deb_layout_is_ours() {
  local disk=$1 nr start sectors type n=0 bad='' root_start='' esp=no
  DEB_LAYOUT_WHY=''
  while read -r nr start sectors type; do
    n=$((n + 1))
    case $DEB_STYLE:$nr in
      msdos:1) ((start == DEB_MIB_SECTORS)) || bad+=" partition 1 starts at sector $start, not $DEB_MIB_SECTORS;" ;;
      gpt:1) root_start=$start ;;
      gpt:2) [[ $start == 2048 && $sectors == 2048 && ${type^^} == "$DEB_BIOS_BOOT_TYPE" ]] || bad+=" partition 2 ($start+$sectors, type $type) is not the BIOS boot partition;" ;;
      gpt:3) if [[ $start == "$DEB_ESP_START" && $sectors == "$DEB_ESP_SECTORS" && ${type^^} == "$DEB_ESP_TYPE" ]]; then esp=yes; else bad+=" partition 3 ($start+$sectors, type $type) is not the EFI system partition;"; fi ;;
      *) bad+=" partition $nr ($((sectors * DEB_SECTOR / 1048576)) MiB at sector $start);" ;;
    esac
  done < <(partx --show --noheadings --output NR,START,SECTORS,TYPE -- "$disk" 2>/dev/null || true)
  if [[ $DEB_STYLE == gpt && -n $root_start ]]; then
    local want=$((2 * DEB_MIB_SECTORS))
    [[ $esp == no ]] || want=$((DEB_ESP_START + DEB_ESP_SECTORS))
    ((root_start == want)) || bad+=" partition 1 starts at sector $root_start, not $want;"
  fi
  if [[ $DEB_STYLE == gpt && -z $bad ]]; then
    if [[ $esp == yes ]] && ((n != 3)); then bad+=" $n partitions where create writes 3;"; fi
    if [[ $esp == no ]] && ((n != 2)); then bad+=" $n partitions where create writes 2;"; fi
  fi
  if [[ -n $bad ]]; then
    # shellcheck disable=SC2034
    DEB_LAYOUT_WHY="its $DEB_STYLE table holds more than this definition writes:${bad%;}"
    return 1
  fi
  return 0
}

# deb_target_root_size DISK STYLE [esp]: the size in bytes partition 1 (or the whole disk) would
# have after deb_partition DISK STYLE [esp], in DEB_TARGET_ROOT_SIZE; found on a sparse scratch
# file with the same size (DISK is not touched).
DEB_TARGET_ROOT_SIZE=''
deb_target_root_size() {
  local disk=$1 style=$2 esp=${3-} size scratch
  size=$(gos_disk_size "$disk")
  DEB_TARGET_ROOT_SIZE=$size
  [[ $style != none ]] || return 0
  gos_mktemp_dir scratch
  truncate -s "$size" -- "$scratch/table" || gos_die "cannot make a scratch file in $scratch"
  # shellcheck disable=SC2034
  DEB_TARGET_ROOT_SIZE=$(
    deb_partition "$scratch/table" "$style" "$esp"
    deb_locate_root "$scratch/table"
    printf '%s' "$DEB_ROOT_SIZE"
  ) || gos_die "could not work out the root partition of a $style table on a disk of $size bytes"
  rm -f -- "$scratch/table"
}

# deb_ext_info DEV: the counters of the ext2/3/4 filesystem on DEV (dumpe2fs -h): DEB_FS_BLOCK
# (block size, bytes), DEB_FS_BLOCKS (blocks), DEB_FS_FREE (free blocks).
deb_ext_info() {
  local head
  head=$(dumpe2fs -h -- "$1" 2>/dev/null) || gos_die "could not read the filesystem on $1 (dumpe2fs)"
  DEB_FS_BLOCK=$(sed -n 's/^Block size:[[:space:]]*\([0-9]*\)$/\1/p' <<<"$head")
  DEB_FS_BLOCKS=$(sed -n 's/^Block count:[[:space:]]*\([0-9]*\)$/\1/p' <<<"$head")
  DEB_FS_FREE=$(sed -n 's/^Free blocks:[[:space:]]*\([0-9]*\)$/\1/p' <<<"$head")
  [[ $DEB_FS_BLOCK =~ ^[0-9]+$ && $DEB_FS_BLOCKS =~ ^[0-9]+$ && $DEB_FS_FREE =~ ^[0-9]+$ ]] ||
    gos_die "could not read the size of the filesystem on $1 (dumpe2fs)"
}

# deb_block_plan DEV: the records of a block-level copy of the ext2/3/4 filesystem on DEV, one a
# line, in bytes: "D OFFSET LENGTH" (copy these bytes) and "Z OFFSET LENGTH" (zero them on the
# target). Copied: every block the filesystem's bitmaps mark in use (dumpe2fs's free-block lists),
# less the never-used tail of each inode table (the group's "unused inodes", on filesystems with
# group checksums) and, when the filesystem is clean, less the journal's old contents (its first
# block, the journal superblock, is copied; the rest is zeroed). Gaps under 256 KiB are copied
# through, so the record count stays small.
deb_block_plan() {
  local dev=$1 recovery=no
  if dumpe2fs -h -- "$dev" 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery'; then recovery=yes; fi
  {
    dumpe2fs -- "$dev" 2>/dev/null || echo 'dumpe2fs failed'
    echo '--journal--'
    if [[ $recovery == no ]]; then debugfs -R 'stat <8>' -- "$dev" 2>/dev/null | sed -n '/^\(EXTENTS\|BLOCKS\):/,/^TOTAL/p'; fi
  } | awk '
    function tail_out(a, b) { if (b >= a) print "X", a, b }
    /^dumpe2fs failed/ { exit 3 }
    /^Block size:/ { bs = $3 }
    /^Block count:/ { n = $3 }
    /^Inode size:/ { isz = $3 }
    /^Inodes per group:/ { ipg = $4 }
    /^Group [0-9]+:/ { group++ }
    /^  Inode table at / { split($4, r, "-"); it0 = r[1]; it1 = r[2] }
    / unused inodes$/ {
      for (i = 1; i <= NF; i++) if ($i == "unused") u = $(i - 1)
      u += 0
      if (u > 0 && it1 != "") tail_out(it0 + int(((ipg - u) * isz + bs - 1) / bs), it1)
    }
    /^  Free blocks: / {
      sub(/^  Free blocks: */, "")
      m = split($0, f, /, */)
      for (i = 1; i <= m; i++) {
        if (f[i] == "") continue
        k = split(f[i], r, "-")
        print "X", r[1], (k > 1 ? r[2] : r[1])
      }
    }
    /^--journal--$/ { jr = 1; next }
    jr {
      m = split($0, f, /, */)
      for (i = 1; i <= m; i++) {
        if (f[i] !~ /^\([0-9]+(-[0-9]+)?\):[0-9]+(-[0-9]+)?$/) continue
        split(f[i], lp, /[():]/)
        split(lp[2], lg, "-"); split(lp[4], ph, "-")
        a = ph[1] + 0; b = (ph[2] != "" ? ph[2] : ph[1]) + 0
        if (lg[1] + 0 == 0) a++
        if (b >= a) { print "X", a, b; print "Z", a, b }
      }
    }
    END { if (!bs || !n) exit 3; print "N", n, bs }
  ' | sort -k1,1 -k2,2n | awk '
    $1 == "N" { n = $2; bs = $3 }
    $1 == "X" { xa[++nx] = $2; xb[nx] = $3 }
    $1 == "Z" { za[++nz] = $2; zb[nz] = $3 }
    END {
      gap = int(262144 / bs); if (gap < 1) gap = 1
      pos = 0; start = -1
      for (i = 1; i <= nx + 1; i++) {
        if (i <= nx) { a = xa[i]; b = xb[i] } else { a = n; b = n }
        if (b < pos) continue
        if (a > pos) {
          # [pos, a) is in use: extend the open record when the hole before it was small.
          if (start >= 0 && pos - end <= gap) end = a
          else { if (start >= 0) printf "D %.0f %.0f\n", start * bs, (end - start) * bs; start = pos; end = a }
        }
        if (b + 1 > pos) pos = b + 1
      }
      if (start >= 0) printf "D %.0f %.0f\n", start * bs, (end - start) * bs
      for (i = 1; i <= nz; i++) printf "Z %.0f %.0f\n", za[i] * bs, (zb[i] - za[i] + 1) * bs
    }'
}

# deb_blocks_out DEV PLAN: write the block-level payload for the records in the file PLAN to
# stdout: each record's line, and after a D line its bytes; then "end".
deb_blocks_out() {
  local dev=$1 plan=$2 t off len
  while read -r t off len; do
    printf '%s %s %s\n' "$t" "$off" "$len"
    if [[ $t == D ]]; then
      dd if="$dev" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$len" status=none || return 1
    fi
  done <"$plan"
  printf 'end\n'
}

# deb_blocks_size PLAN: the payload's exact size in bytes.
deb_blocks_size() {
  awk '{ s += length($0) + 1; if ($1 == "D") s += $3 } END { printf "%.0f", s + 4 }' "$1"
}

# deb_blocks_in DEV LIMIT: write a block-level payload from stdin onto DEV (LIMIT bytes long);
# every record must lie inside it. Fails on a damaged or truncated payload.
deb_blocks_in() {
  local dev=$1 limit=$2 t off len
  while IFS=' ' read -r t off len; do
    case $t in
      end) blockdev --flushbufs "$dev" 2>/dev/null || sync
        return 0 ;;
      D | Z) ;;
      *) gos_log "damaged block record '$t ${off-} ${len-}'"; return 1 ;;
    esac
    if ! [[ $off =~ ^[0-9]+$ && $len =~ ^[0-9]+$ ]] || ((off + len > limit)); then
      gos_log "block record '$t $off $len' does not fit the $limit bytes of the filesystem"
      return 1
    fi
    if [[ $t == Z ]]; then
      # A loop device zeroes through its backing file (a hole in a file-backed disk).
      blkdiscard --zeroout --force --offset "$off" --length "$len" -- "$dev" 2>/dev/null ||
        dd if=/dev/zero of="$dev" bs=1M oflag=seek_bytes seek="$off" iflag=count_bytes count="$len" conv=notrunc status=none || return 1
    else
      dd of="$dev" bs=1M iflag=fullblock,count_bytes count="$len" oflag=seek_bytes seek="$off" conv=notrunc status=none || return 1
    fi
  done
  gos_log "the block stream ended before its end record: it is truncated"
  return 1
}
