# shellcheck shell=bash
# Steps of the 'debian' template: create installs Debian (or Ubuntu) onto disk 0, export/import
# move a disk as a stream (lib/debian-stream.sh), rename renames the installed system, verify
# checks the OS parameters. Sourced by lib/runtime.sh, which provides the gos_* helpers and the
# cleanup stack; the helpers the steps call are in the files sourced below.

# shellcheck source=/dev/null
. "$GOS_DIR/lib/raw-stream.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/dns-servers.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/host-names.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/debian-disk.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/debian-system.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/debian-network.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/debian-identity.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/debian-configure.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/debian-stream.sh"

# --- parameters -----------------------------------------------------------------------------

# Checks beyond choices and patterns (called by gos_check_params for each parameter given).
gos_check_param() {
  case $1 in
    partition-style)
      if [[ $2 == none && ${OSP_INSTALL_KERNEL-} == yes ]]; then
        gos_log "invalid value 'none' for parameter partition-style: install-kernel=yes needs a partition table to hold the boot loader (use msdos or gpt)"
        return 1
      fi
      ;;
    firmware)
      if [[ $2 == uefi || $2 == both ]] && [[ $(gos_param partition-style) != gpt ]]; then
        gos_log "invalid value '$2' for parameter firmware: UEFI needs partition-style gpt (partition-style is $(gos_param partition-style), which has no EFI system partition)"
        return 1
      fi
      ;;
    dns-servers) gos_check_dns_servers "$2" || return 1 ;;
  esac
  return 0
}

# deb_firmware STYLE: what the disk is made to boot under: bios, uefi or both (the firmware
# parameter; auto is both on gpt for amd64, bios otherwise: msdos stays BIOS-only).
deb_firmware() {
  local style=$1 fw
  fw=$(gos_param firmware)
  case $fw in
    '' | auto) if [[ $style == gpt && $ARCH == amd64 ]]; then fw=both; else fw=bios; fi ;;
  esac
  if [[ $fw != bios && $style != gpt ]]; then
    gos_die "firmware=$fw needs partition-style gpt: a $style disk boots under BIOS only"
  fi
  if [[ $fw != bios && $ARCH != amd64 ]]; then
    gos_die "firmware=$fw: UEFI boot files are installed only for amd64 (ARCH is $ARCH)"
  fi
  printf '%s' "$fw"
}

# deb_firmware_text FIRMWARE: how the create log says it.
deb_firmware_text() {
  case $1 in
    both) printf 'BIOS and UEFI (GRUB in the BIOS boot partition; signed shim and GRUB at /EFI/BOOT/BOOTX64.EFI on the ESP, Secure Boot ready)' ;;
    uefi) printf 'UEFI only (signed shim and GRUB at /EFI/BOOT/BOOTX64.EFI on the ESP, Secure Boot ready)' ;;
    *) printf 'BIOS only' ;;
  esac
}

# deb_want_kernel: should create install a kernel and a boot loader?
deb_want_kernel() {
  case $(gos_param install-kernel) in
    yes) return 0 ;;
    no) return 1 ;;
    *)
      # Containers share the node's kernel; other hypervisors boot the disk unless given a kernel.
      case ${HYPERVISOR-} in
        lxc | chroot | fake) return 1 ;;
      esac
      [[ -z ${INSTANCE_HV_kernel_path-} ]]
      ;;
  esac
}

# --- create ---------------------------------------------------------------------------------

gos_step_create() {
  deb_settings
  gos_check_params || gos_die "invalid OS parameters"
  local disk=${DISK_0_PATH-} style fstype kernel=no swapdisk='' size need tar img tmp dev uuid swap_uuid='' root keys='' fw=bios esp=''
  [[ -n $disk ]] || gos_die "disk 0 has no DISK_0_PATH: this definition needs a disk the node can open"
  style=$(gos_param partition-style)
  fstype=$(gos_param filesystem)
  if deb_want_kernel; then
    kernel=yes
    [[ $style != none ]] ||
      gos_die "partition-style none leaves no room for a boot loader: use partition-style msdos or gpt, or install-kernel=no with the hypervisor's kernel_path"
    [[ $ARCH == amd64 || $ARCH == i386 ]] ||
      gos_die "a boot loader is installed only for amd64 and i386 (ARCH is $ARCH): use install-kernel=no with the hypervisor's kernel_path"
    fw=$(deb_firmware "$style") || exit 1
    [[ $fw == bios ]] || esp=esp
  fi
  if [[ $(gos_param network) == static && -z ${NIC_0_IP-} ]]; then
    gos_die "parameter network is static but NIC 0 has no IP address (set one with --net 0:ip=...)"
  fi
  deb_plan_network
  if [[ $(gos_param swap) == yes ]]; then
    ((DISK_COUNT >= 2)) || gos_die "parameter swap=yes needs a second disk (disk 1) to use as swap"
    swapdisk=${DISK_1_PATH-}
    [[ -n $swapdisk ]] || gos_die "parameter swap=yes: disk 1 has no DISK_1_PATH"
    # mkswap runs after disk 0 is written: its disk must be fit for it before anything is.
    (($(gos_disk_size "$swapdisk") >= 1048576)) || gos_die "parameter swap=yes: disk 1 ($swapdisk) is smaller than 1 MiB, too small for swap"
  fi
  gos_fault check
  size=$(gos_disk_size "$disk")
  if ((size < MIN_DISK_MIB * 1048576)); then
    gos_die "disk 0 is too small: $((size / 1048576)) MiB, this definition needs at least $MIN_DISK_MIB MiB (MIN_DISK_MIB)"
  fi

  gos_mktemp_dir tmp
  # On reinstall, keep what the instance's clients know it by before anything is overwritten.
  if [[ ${INSTANCE_REINSTALL-} == 1 ]]; then
    gos_fault reinstall
    deb_save_host_keys "$disk" "$tmp/keys"
    keys=$tmp/keys
  fi

  deb_resolve_mirror
  deb_resolve_proxy
  local -a pkgs=()
  read -r -a pkgs <<<"$BASE_PACKAGES $EXTRA_PKGS $(gos_param extra-packages)"
  if [[ $kernel == yes ]]; then
    local -a kp=()
    read -r -a kp <<<"$(deb_kernel_packages)"
    pkgs+=("${kp[@]}")
    # UEFI: Debian's signed shim and GRUB (copied onto the ESP; see deb_install_efi).
    if [[ -n $esp ]]; then pkgs+=(shim-signed grub-efi-amd64-signed grub-efi-amd64-bin); fi
  fi
  gos_fault install
  deb_base_tarball tar "${pkgs[@]}"
  deb_base_image img "$tar" "$fstype"
  if ! compgen -G "$tmp/keys/ssh_host_*" >/dev/null; then
    command -v ssh-keygen >/dev/null || gos_die "ssh-keygen is missing on this node (apt-get install openssh-client)"
    deb_start_host_keys "$tmp/newkeys"
  fi

  # The system must fit: the tarball's size is that of its files.
  need=$(($(stat -c %s -- "$tar") * 11 / 10 + 64 * 1048576))
  # A cached image is copied whole, then grown to the partition.
  if [[ -n $img ]] && (($(stat -c %s -- "$img") > need)); then need=$(stat -c %s -- "$img"); fi
  if ((size < need + 4 * 1048576)); then
    gos_die "disk 0 is too small for this system: $((size / 1048576)) MiB, the $SUITE system with these packages needs at least $(((need + 4 * 1048576 + 1048575) / 1048576)) MiB"
  fi

  gos_fault partition
  deb_partition "$disk" "$style" "$esp"
  deb_locate_root "$disk"
  gos_fault attach
  gos_attach_range "$disk" "$DEB_ROOT_OFFSET" "$DEB_ROOT_SIZE" dev
  gos_fault mkfs
  uuid=$(deb_new_uuid)
  if [[ -n $img ]]; then
    # The cached image's blocks in use, through the loop device (e2image given a regular file
    # truncates it at the image's end), grown to the partition, with this instance's own UUID.
    e2image -ra -- "$img" "$dev" >/dev/null 2>&1 || gos_die "could not copy the cached $fstype image onto disk 0 (e2image)"
    resize2fs -- "$dev" >/dev/null 2>&1 || gos_die "could not grow the $fstype filesystem to the root partition (resize2fs)"
    tune2fs -U "$uuid" -- "$dev" >/dev/null 2>&1 || gos_die "could not give the root filesystem its UUID (tune2fs)"
  else
    deb_mkfs "$fstype" "$dev" "$uuid" root
  fi
  if [[ -n $swapdisk ]]; then
    swap_uuid=$(deb_new_uuid)
    mkswap -U "$swap_uuid" -L swap -- "$swapdisk" >/dev/null || gos_die "could not make swap on disk 1 ($swapdisk)"
  fi
  gos_fault mount
  root=$tmp/root
  gos_mount "$dev" "$root"
  gos_fault extract
  if [[ -z $img ]]; then
    tar --numeric-owner --xattrs --xattrs-include='*' --acls -xpf "$tar" -C "$root" ||
      gos_die "could not unpack the base system into disk 0"
  fi

  gos_fault configure
  deb_scrub_node_settings "$root"
  deb_write_names "$root"
  deb_write_fstab "$root" "$fstype" "$uuid" "$swap_uuid"
  deb_write_apt_sources "$root"
  deb_write_network "$root"
  deb_write_resolv_conf "$root"
  deb_write_console "$root"
  deb_write_grow_root "$root"
  deb_write_root_access "$root"
  deb_write_host_keys "$root" "$keys" "$tmp/newkeys"
  : >"$root/etc/machine-id"
  deb_keep_machine_id "$root" "$keys"
  rm -f -- "$root/var/lib/systemd/random-seed" "$root/etc/udev/rules.d/70-persistent-net.rules"
  find "$root/var/cache/apt/archives" -type f -name '*.deb' -delete 2>/dev/null || true

  if [[ $kernel == yes ]]; then
    gos_fault bootloader
    deb_write_grub_config "$root" "$uuid"
    if [[ $fw != uefi ]]; then deb_install_grub "$disk" "$style" "$root"; fi
    if [[ -n $esp ]]; then deb_install_efi "$disk" "$root" "$uuid"; fi
  fi
  gos_fault hooks
  deb_run_hooks "$root" "$disk" "$dev"
  gos_fault finish
  gos_log "installed $SUITE ($ARCH) on $INSTANCE_NAME: $fstype root $uuid, partition style $style, kernel and boot loader: $kernel"
  if [[ $kernel == yes ]]; then gos_log "disk 0 boots under $(deb_firmware_text "$fw")"; fi
}

# --- export / import ------------------------------------------------------------------------
# The stream format and its helpers are in lib/debian-stream.sh.

gos_step_export() {
  deb_settings
  local disk=$EXPORT_DEVICE tmp dev='' kind fstype style=none uuid='' label='' boot=none esp=no header size compress plan='' used='' fssize='' format=$EXPORT_FORMAT
  compress=$EXPORT_COMPRESS
  deb_compressor "$compress"
  case $format in
    blocks | files) ;;
    *) gos_die "EXPORT_FORMAT must be blocks or files, not '$format'" ;;
  esac
  gos_mktemp_dir tmp
  gos_fault export-locate
  deb_export_kind "$disk"
  kind=$DEB_KIND
  fstype=$DEB_FSTYPE
  case $kind in
    swap)
      uuid=$(blkid -p -o value -s UUID -- "$disk" 2>/dev/null || true)
      label=$(blkid -p -o value -s LABEL -- "$disk" 2>/dev/null || true)
      ;;
    fs)
      style=$DEB_STYLE
      gos_attach_range "$disk" "$DEB_ROOT_OFFSET" "$DEB_ROOT_SIZE" dev ro
      uuid=$(blkid -p -o value -s UUID -- "$dev" 2>/dev/null || true)
      label=$(blkid -p -o value -s LABEL -- "$dev" 2>/dev/null || true)
      deb_ext_info "$dev"
      fssize=$((DEB_FS_BLOCK * DEB_FS_BLOCKS))
      used=$((DEB_FS_BLOCK * (DEB_FS_BLOCKS - DEB_FS_FREE)))
      gos_fault export-mount
      # Read-only, without replaying a journal: only to see what the disk boots with.
      deb_mount_ro "$dev" "$tmp/root"
      if [[ -f $tmp/root/boot/grub/i386-pc/core.img && -f $tmp/root/boot/grub/grub.cfg ]]; then boot=grub-bios; fi
      # The ESP does not travel: import makes it anew from the instance's own signed files.
      if [[ -n $DEB_ESP_OFFSET ]]; then esp=yes; fi
      if [[ $format == blocks ]]; then
        gos_pop_cleanup
        kind=fsblocks
        plan=$tmp/plan
        deb_block_plan "$dev" >"$plan" || gos_die "could not work out the blocks in use on disk $EXPORT_INDEX (dumpe2fs)"
        [[ -s $plan ]] || gos_die "the filesystem on disk $EXPORT_INDEX has no blocks in use: dumpe2fs could not read it"
      fi
      ;;
    raw)
      compress=$(gos_raw_method "$compress")
      gos_log "disk $EXPORT_INDEX travels whole (raw, $compress): $DEB_KIND_WHY"
      ;;
  esac
  size=$(gos_disk_size "$disk")
  header=$(printf '%s\n' "$DEB_STREAM_MAGIC" "kind=$kind" "style=$style" "fstype=$fstype" "uuid=$uuid" \
    "label=$label" "bootloader=$boot" "esp=$esp" "compress=$compress" "size=$size" ${fssize:+"fssize=$fssize"} ${used:+"used=$used"} "end")
  header+=$'\n'
  # The stream's size from the filesystem's own counters (the block plan, or the bytes in use).
  case $kind in
    fsblocks) if [[ $compress == none ]]; then gos_announce_size $((${#header} + $(deb_blocks_size "$plan"))); fi ;;
    fs) if [[ $compress == none ]]; then gos_announce_size $((${#header} + used)); fi ;;
    swap) gos_announce_size "${#header}" ;;
  esac
  gos_log "exporting disk $EXPORT_INDEX as a ${kind} stream${fstype:+ ($fstype, partition style $style)}"
  gos_fault export-stream
  printf '%s' "$header"
  case $kind in
    fsblocks)
      deb_to_payload deb_blocks_out "$dev" "$plan" || gos_die "could not read the filesystem on disk $EXPORT_INDEX"
      ;;
    fs) deb_to_payload tar "${DEB_TAR_OPTS[@]}" -C "$tmp/root" -cf - . ;;
    raw) gos_raw_export "$disk" "$compress" ;;
    swap) ;;
  esac
}

gos_step_import() {
  deb_settings
  local disk=$IMPORT_DEVICE tmp dev uuid root size old style fstype kind img sdev
  gos_mktemp_dir tmp
  deb_read_header
  deb_check_header
  kind=${DEB_HDR[kind]-} style=${DEB_HDR[style]-none} fstype=${DEB_HDR[fstype]-}
  deb_decompressor "${DEB_HDR[compress]-none}"
  size=$(gos_disk_size "$disk")
  gos_fault import-check
  case $kind in
    raw)
      gos_fault import-raw
      gos_raw_import "$disk" "${DEB_HDR[compress]-none}" "${DEB_HDR[size]:-0}"
      gos_log "imported disk $IMPORT_INDEX (raw)"
      return 0
      ;;
    swap)
      mkswap ${DEB_HDR[uuid]:+-U "${DEB_HDR[uuid]}"} ${DEB_HDR[label]:+-L "${DEB_HDR[label]}"} -- "$disk" >/dev/null ||
        gos_die "could not make swap on $disk"
      gos_log "imported disk $IMPORT_INDEX (swap)"
      return 0
      ;;
    fs | fsblocks) ;;
    *) gos_die "the import stream holds a disk of unknown kind '$kind'" ;;
  esac
  [[ $fstype == ext[234] ]] || gos_die "the import stream holds an unsupported filesystem '$fstype'"
  [[ $style == msdos || $style == gpt || $style == none ]] || gos_die "the import stream has an unknown partition style '$style'"
  # An exported ESP is made anew (deb_install_efi), for disk 0 of a gpt stream only.
  DEB_ESP_WANT=''
  if [[ ${DEB_HDR[esp]-} == yes && $style == gpt ]]; then DEB_ESP_WANT=esp; fi
  deb_import_plan "$disk"
  # The root disk gets a new filesystem UUID (fstab and the boot loader follow it); another disk
  # keeps its UUID, so that the instance's own fstab still finds it.
  old=${DEB_HDR[uuid]-}
  if [[ $IMPORT_INDEX == 0 || -z $old ]]; then uuid=$(deb_new_uuid); else uuid=$old; fi
  if [[ $DEB_MODE == stage ]]; then
    # The blocks go to a sparse scratch image first (nothing on the disk yet).
    img=$tmp/stage.img
    truncate -s "${DEB_HDR[fssize]}" -- "$img" || gos_die "cannot make a scratch image in $tmp"
    gos_attach_range "$img" 0 "${DEB_HDR[fssize]}" sdev
    deb_from_payload deb_blocks_in "$sdev" "${DEB_HDR[fssize]}" || gos_die "could not read the block stream for disk $IMPORT_INDEX"
    e2fsck -fy -- "$sdev" >/dev/null 2>&1
    (($? < 4)) || gos_die "the exported filesystem has errors e2fsck cannot fix; nothing was written"
    if [[ $DEB_WANT_FS == "$fstype" ]]; then
      # Shrunk to the partition it will get, while the disk is still untouched.
      resize2fs -- "$sdev" "$((DEB_TARGET_ROOT_SIZE / 1024))K" >/dev/null 2>&1 ||
        gos_die "the files of the exported filesystem do not fit the $((DEB_TARGET_ROOT_SIZE / 1048576)) MiB root partition disk $IMPORT_INDEX would get (resize2fs); nothing was written"
    fi
  fi
  gos_fault import-partition
  deb_partition "$disk" "$style" "$DEB_ESP_WANT"
  deb_locate_root "$disk"
  gos_attach_range "$disk" "$DEB_ROOT_OFFSET" "$DEB_ROOT_SIZE" dev
  root=$tmp/root
  gos_fault import-extract
  case $DEB_MODE in
    direct)
      deb_from_payload deb_blocks_in "$dev" "$DEB_ROOT_SIZE" || gos_die "could not write the block stream onto disk $IMPORT_INDEX"
      deb_tune_new_fs "$dev" "$uuid"
      gos_mount "$dev" "$root"
      ;;
    stage)
      if [[ $DEB_WANT_FS == "$fstype" ]]; then
        e2image -ra -- "$sdev" "$dev" >/dev/null 2>&1 || gos_die "could not copy the filesystem onto disk $IMPORT_INDEX (e2image)"
        deb_tune_new_fs "$dev" "$uuid"
        gos_mount "$dev" "$root"
      else
        deb_mkfs "$DEB_WANT_FS" "$dev" "$uuid" "${DEB_HDR[label]:-root}"
        gos_mount "$dev" "$root"
        deb_mount_ro "$sdev" "$tmp/stage"
        (
          set -o pipefail
          tar "${DEB_TAR_OPTS[@]}" -C "$tmp/stage" -cf - . | tar "${DEB_TAR_OPTS[@]}" -xpf - -C "$root"
        ) || gos_die "could not copy the files into the new $DEB_WANT_FS filesystem of disk $IMPORT_INDEX"
      fi
      ;;
    files)
      deb_mkfs "$DEB_WANT_FS" "$dev" "$uuid" "${DEB_HDR[label]:-root}"
      gos_mount "$dev" "$root"
      deb_from_payload tar "${DEB_TAR_OPTS[@]}" -xpf - -C "$root" ||
        gos_die "could not unpack the stream onto disk $IMPORT_INDEX (is the disk large enough for the exported files?)"
      ;;
  esac
  if [[ -n $old && $old != "$uuid" && -f $root/etc/fstab ]]; then
    sed -i -e "s/UUID=$old\b/UUID=$uuid/g" "$root/etc/fstab"
  fi
  if [[ $DEB_WANT_FS != "$fstype" && -f $root/etc/fstab ]]; then
    # The root entry names the filesystem type it now has.
    awk -v u="UUID=$uuid" -v t="$DEB_WANT_FS" 'BEGIN { OFS = "\t" } $1 == u && $2 == "/" { $3 = t } { print }' "$root/etc/fstab" >"$root/etc/.fstab.ganeti-os" &&
      cat -- "$root/etc/.fstab.ganeti-os" >"$root/etc/fstab" && rm -f -- "$root/etc/.fstab.ganeti-os"
  fi
  if [[ ${DEB_HDR[bootloader]-} == grub-bios || -n $DEB_ESP_WANT ]]; then
    gos_fault import-bootloader
    if [[ -n $old && $old != "$uuid" && -f $root/boot/grub/grub.cfg ]]; then
      sed -i -e "s/$old/$uuid/g" "$root/boot/grub/grub.cfg"
    fi
    if [[ ${DEB_HDR[bootloader]-} == grub-bios ]]; then deb_install_grub "$disk" "$style" "$root"; fi
    if [[ -n $DEB_ESP_WANT ]]; then deb_install_efi "$disk" "$root" "$uuid"; fi
  fi
  gos_fault import-finish
  gos_log "imported disk $IMPORT_INDEX: $DEB_WANT_FS root $uuid (was $fstype $old), partition style $style, from a $kind stream ($DEB_MODE)"
  # Identity (lib/debian-identity.sh): the rename Ganeti runs next reads this marker.
  if [[ $IMPORT_INDEX == 0 ]]; then deb_mark_imported "$root"; fi
}

# --- rename ---------------------------------------------------------------------------------

gos_step_rename() {
  deb_settings
  local disk=${DISK_0_PATH-} tmp dev root current
  [[ -n $disk ]] || gos_die "disk 0 has no DISK_0_PATH"
  gos_mktemp_dir tmp
  gos_fault rename-locate
  deb_locate_root "$disk"
  gos_attach_range "$disk" "$DEB_ROOT_OFFSET" "$DEB_ROOT_SIZE" dev
  root=$tmp/root
  gos_mount "$dev" "$root"
  current=$(head -n 1 "$root/etc/hostname" 2>/dev/null || true)
  if [[ $current != "$OLD_INSTANCE_NAME" && $current != "$INSTANCE_NAME" &&
    $current != "$(gos_short_name "$OLD_INSTANCE_NAME")" && $current != "$(gos_short_name "$INSTANCE_NAME")" ]]; then
    gos_die "the instance's hostname is '$current', neither the old name $OLD_INSTANCE_NAME nor the new name $INSTANCE_NAME: not renaming a system this definition did not set up"
  fi
  gos_fault rename-write
  deb_plan_network
  deb_write_names "$root" "$OLD_INSTANCE_NAME"
  if compgen -G "$root/etc/systemd/network/10-ganeti-nic*.network" >/dev/null; then
    deb_write_network "$root"
  fi
  gos_fault rename-identity
  deb_rename_identity "$root" "$tmp"
  if [[ $OLD_INSTANCE_NAME == "$INSTANCE_NAME" ]]; then
    gos_log "instance $INSTANCE_NAME: name unchanged; names and addresses rewritten"
  else
    gos_log "renamed $OLD_INSTANCE_NAME to $INSTANCE_NAME"
  fi
}
