# shellcheck shell=bash
# Steps of the 'debian' template: create installs Debian (or Ubuntu) onto disk 0, export/import
# move a disk as a file-level stream, rename renames the installed system, verify checks the OS
# parameters. Sourced by lib/runtime.sh, which provides the gos_* helpers and the cleanup stack.

# shellcheck source=/dev/null
. "$GOS_DIR/lib/debian-disk.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/debian-system.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/debian-network.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/debian-identity.sh"

DEB_STREAM_MAGIC='GANETI-OS-DEBIAN-EXPORT 1'

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
    dns-servers)
      local s
      for s in $2; do
        [[ $s =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ || $s == *:* ]] || {
          gos_log "invalid value '$2' for parameter dns-servers: '$s' is not an IP address"
          return 1
        }
      done
      ;;
  esac
  return 0
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

deb_short_name() {
  printf '%s' "${1%%.*}"
}

# --- configuring the installed system -------------------------------------------------------

# deb_write_names ROOT [OLD]: hostname, mailname and /etc/hosts for INSTANCE_NAME. Lines of
# /etc/hosts naming OLD or the new name are replaced; everything else is kept.
deb_write_names() {
  local root=$1 old=${2-} short tmp
  short=$(deb_short_name "$INSTANCE_NAME")
  printf '%s\n' "$INSTANCE_NAME" >"$root/etc/hostname"
  printf '%s\n' "$INSTANCE_NAME" >"$root/etc/mailname"
  tmp=$root/etc/.hosts.ganeti-os
  {
    if [[ -f $root/etc/hosts ]]; then
      awk -v a="$old" -v b="$(deb_short_name "$old")" -v c="$INSTANCE_NAME" -v d="$short" '
        { drop = 0; for (i = 2; i <= NF; i++) if ($i != "" && ($i == a || $i == b || $i == c || $i == d)) drop = 1 }
        !drop { print }' "$root/etc/hosts"
    else
      printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n'
    fi
    if [[ $short == "$INSTANCE_NAME" ]]; then
      printf '%s\t%s\n' "$(deb_host_address)" "$INSTANCE_NAME"
    else
      printf '%s\t%s %s\n' "$(deb_host_address)" "$INSTANCE_NAME" "$short"
    fi
  } >"$tmp"
  chmod 0644 -- "$tmp"
  mv -f -- "$tmp" "$root/etc/hosts"
}

# deb_write_fstab ROOT FSTYPE UUID [SWAP_UUID]
deb_write_fstab() {
  local root=$1 fstype=$2 uuid=$3 swap=${4-}
  {
    printf '# /etc/fstab: static file system information (written by the %s OS definition).\n' "$GOS_OS_NAME"
    printf '# <file system>\t<mount point>\t<type>\t<options>\t<dump>\t<pass>\n'
    printf 'UUID=%s\t/\t%s\terrors=remount-ro\t0\t1\n' "$uuid" "$fstype"
    if [[ -n $swap ]]; then printf 'UUID=%s\tnone\tswap\tsw\t0\t0\n' "$swap"; fi
  } >"$root/etc/fstab"
}

# deb_write_apt_sources ROOT: the instance's apt sources, from MIRROR (and the security
# archive), without any user name or password the node's URLs carry.
deb_write_apt_sources() {
  local root=$1 security=${SECURITY_MIRROR:-} public
  public=$(deb_public_url "$MIRROR")
  if [[ $public != "$MIRROR" ]]; then
    gos_log "the mirror's credentials stay on the node: the instance's apt sources name $public"
  fi
  {
    printf '# Written by the %s OS definition.\n' "$GOS_OS_NAME"
    printf 'deb %s %s %s\n' "$public" "$SUITE" "$COMPONENTS"
    case $SUITE in
      sid | unstable | experimental | testing) ;;
      *)
        printf 'deb %s %s-updates %s\n' "$public" "$SUITE" "$COMPONENTS"
        if deb_is_ubuntu; then
          printf 'deb %s %s-security %s\n' "$(deb_public_url "${security:-$MIRROR}")" "$SUITE" "$COMPONENTS"
        else
          if [[ -z $security && $DEB_MIRROR_FROM_NODE == yes ]]; then security=$(deb_node_security_mirror || true); fi
          if [[ -n $security ]]; then printf 'deb %s %s-security %s\n' "$(deb_public_url "${security%/}")" "$SUITE" "$COMPONENTS"; fi
        fi
        ;;
    esac
  } >"$root/etc/apt/sources.list"
  rm -f -- "$root/etc/apt/sources.list.d/debian.sources" "$root/etc/apt/sources.list.d/ubuntu.sources"
}

# deb_serial_port: the console the hypervisor offers (empty for none).
deb_serial_port() {
  if [[ $HYPERVISOR == xen-pvm ]]; then
    printf 'hvc0'
  elif [[ ${INSTANCE_HV_serial_console-} == True ]]; then
    printf 'ttyS0'
  fi
}

deb_serial_speed() {
  local speed=${INSTANCE_HV_serial_speed:-115200}
  [[ $speed =~ ^[0-9]+$ ]] || speed=115200
  printf '%s' "$speed"
}

deb_write_console() {
  local root=$1 port
  port=$(deb_serial_port)
  [[ -n $port ]] || return 0
  mkdir -p -- "$root/etc/systemd/system/getty.target.wants"
  ln -sfn /lib/systemd/system/serial-getty@.service "$root/etc/systemd/system/getty.target.wants/serial-getty@$port.service"
}

# deb_write_root_access ROOT: root's password (locked unless a hash is given) and SSH keys.
deb_write_root_access() {
  local root=$1 hash keys k tmp
  hash=$(gos_param root-password-hash)
  [[ -n $hash ]] || hash='!'
  tmp=$root/etc/.shadow.ganeti-os
  if ! awk -v h="$hash" 'BEGIN { FS = OFS = ":" } $1 == "root" { $2 = h } { print }' "$root/etc/shadow" >"$tmp" ||
    ! cat -- "$tmp" >"$root/etc/shadow"; then
    gos_die "could not set root's password in /etc/shadow"
  fi
  rm -f -- "$tmp"
  keys=$(gos_param ssh-authorized-keys)
  if [[ -n $keys || -s $SSH_AUTHORIZED_KEYS_FILE ]]; then
    install -d -m 0700 -o 0 -g 0 -- "$root/root/.ssh"
    {
      if [[ -s $SSH_AUTHORIZED_KEYS_FILE ]]; then grep -v '^[[:space:]]*$' -- "$SSH_AUTHORIZED_KEYS_FILE"; fi
      if [[ -n $keys ]]; then
        IFS='|' read -r -a k <<<"$keys"
        printf '%s\n' "${k[@]}"
      fi
    } >"$root/root/.ssh/authorized_keys"
    chmod 0600 -- "$root/root/.ssh/authorized_keys"
  fi
}

# deb_start_host_keys DIR: make the instance's SSH host keys in DIR in the background (RSA
# takes a second or two: it overlaps with unpacking the system). DEB_KEYGEN_PID is the job.
DEB_KEYGEN_PID=''
deb_start_host_keys() {
  local dir=$1
  mkdir -p -- "$dir"
  (
    for t in rsa ecdsa ed25519; do
      ssh-keygen -q -t "$t" -N '' -C "root@$INSTANCE_NAME" -f "$dir/ssh_host_${t}_key" </dev/null >/dev/null || exit 1
    done
  ) &
  DEB_KEYGEN_PID=$!
  # Never leave the job running behind a failed create.
  gos_push_cleanup deb_reap_keygen
}

deb_reap_keygen() {
  if [[ -n $DEB_KEYGEN_PID ]]; then
    kill "$DEB_KEYGEN_PID" 2>/dev/null || true
    wait "$DEB_KEYGEN_PID" 2>/dev/null || true
    DEB_KEYGEN_PID=''
  fi
}

# deb_write_host_keys ROOT SAVED NEW: the SSH host keys kept from a reinstall (SAVED), else the
# new ones made by deb_start_host_keys in NEW.
deb_write_host_keys() {
  local root=$1 saved=$2 new=$3
  [[ -d $root/etc/ssh ]] || return 0
  if [[ -n $saved ]] && compgen -G "$saved/ssh_host_*" >/dev/null; then
    rm -f -- "$root"/etc/ssh/ssh_host_*
    cp -p -- "$saved"/ssh_host_* "$root/etc/ssh/"
    gos_log "kept the instance's SSH host keys"
    return 0
  fi
  if [[ -z $DEB_KEYGEN_PID ]] || ! wait "$DEB_KEYGEN_PID"; then
    DEB_KEYGEN_PID=''
    gos_die "could not make the instance's SSH host keys (ssh-keygen)"
  fi
  DEB_KEYGEN_PID=''
  rm -f -- "$root"/etc/ssh/ssh_host_*
  cp -p -- "$new"/ssh_host_* "$root/etc/ssh/"
}

# deb_kernel_file ROOT KIND: the newest /boot/vmlinuz-* (KIND vmlinuz) or its initrd.
deb_kernel_version() {
  local root=$1 f
  f=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' 2>/dev/null | sed 's/^vmlinuz-//' | sort -V | tail -n 1)
  printf '%s' "$f"
}

# deb_write_grub_config ROOT UUID: /boot/grub/grub.cfg and /etc/default/grub for the instance.
deb_write_grub_config() {
  local root=$1 uuid=$2 version port speed console='' terminal=''
  version=$(deb_kernel_version "$root")
  [[ -n $version ]] || gos_die "no kernel in the instance's /boot: cannot write the boot loader's configuration"
  port=$(deb_serial_port)
  speed=$(deb_serial_speed)
  if [[ $port == ttyS0 ]]; then
    console="console=tty0 console=ttyS0,${speed}n8"
    terminal=$'serial --unit=0 --speed='"$speed"$'\nterminal_input serial console\nterminal_output serial console\n'
  elif [[ $port == hvc0 ]]; then
    console="console=hvc0"
  fi
  mkdir -p -- "$root/boot/grub"
  cat >"$root/boot/grub/grub.cfg" <<EOF
# Written by the $GOS_OS_NAME OS definition; update-grub in the instance replaces it.
set timeout=3
set default=0
${terminal}insmod part_msdos
insmod part_gpt
insmod ext2
search --no-floppy --fs-uuid --set=root $uuid
menuentry '$(deb_is_ubuntu && echo Ubuntu || echo Debian GNU/Linux) ($SUITE, $version)' {
	linux /boot/vmlinuz-$version root=UUID=$uuid ro $console
	initrd /boot/initrd.img-$version
}
EOF
  if [[ -f $root/etc/default/grub ]]; then
    sed -i -e "s|^GRUB_CMDLINE_LINUX=.*|GRUB_CMDLINE_LINUX=\"$console\"|" "$root/etc/default/grub"
    if [[ $port == ttyS0 ]]; then
      printf 'GRUB_TERMINAL="serial console"\nGRUB_SERIAL_COMMAND="serial --unit=0 --speed=%s"\n' "$speed" >"$root/etc/default/grub.d/ganeti-os.cfg" 2>/dev/null || true
    fi
  fi
}

# deb_save_host_keys DISK DIR: on reinstall, copy the old system's SSH host keys into DIR.
# Anything unreadable is only a warning: the instance then gets new keys. The old filesystem is
# attached read-only and released again before the disk is overwritten.
deb_save_host_keys() {
  local disk=$1 dir=$2 mnt=$2.mnt dev pttype nr start sectors off='' len=''
  mkdir -p -- "$dir"
  pttype=$(blkid -p -o value -s PTTYPE -- "$disk" 2>/dev/null || true)
  case $pttype in
    dos | gpt)
      while read -r nr start sectors; do
        if [[ $nr == 1 ]]; then off=$((start * DEB_SECTOR)) len=$((sectors * DEB_SECTOR)); fi
      done < <(partx --show --noheadings --output NR,START,SECTORS -- "$disk" 2>/dev/null || true)
      ;;
    '') off=0 len=$(gos_disk_size "$disk") ;;
  esac
  if [[ -n $off ]] && dev=$(losetup --find --show --read-only --offset "$off" --sizelimit "$len" -- "$disk" 2>/dev/null); then
    gos_push_cleanup losetup --detach "$dev"
    mkdir -p -- "$mnt"
    if mount -o ro -- "$dev" "$mnt" 2>/dev/null || mount -o ro,noload -- "$dev" "$mnt" 2>/dev/null; then
      gos_push_cleanup umount -- "$mnt"
      deb_fault reinstall-mounted
      cp -p -- "$mnt"/etc/ssh/ssh_host_* "$dir/" 2>/dev/null || true
      deb_save_machine_id "$mnt" "$dir"
      gos_pop_cleanup
    fi
    gos_pop_cleanup
    rmdir -- "$mnt" 2>/dev/null || true
  fi
  if compgen -G "$dir/ssh_host_*" >/dev/null; then
    gos_log "reinstall: saved the SSH host keys of the old system"
  else
    gos_log "reinstall: no SSH host keys found on the old disk; the instance gets new ones"
  fi
}

# deb_run_hooks ROOT DISK FSDEV
deb_run_hooks() {
  local root=$1 disk=$2 fsdev=$3
  [[ -d $HOOKS_DIR ]] || return 0
  gos_log "running site hooks from $HOOKS_DIR"
  TARGET=$root BLOCKDEV=$disk FSYSDEV=$fsdev PARTITION_STYLE=$(gos_param partition-style) \
    SUITE=$SUITE ARCH=$ARCH EXTRA_PKGS="$EXTRA_PKGS" MIRROR=$MIRROR \
    run-parts --exit-on-error -- "$HOOKS_DIR" >&2 || gos_die "a site hook in $HOOKS_DIR failed"
}

# --- create ---------------------------------------------------------------------------------

gos_step_create() {
  deb_settings
  gos_check_params || gos_die "invalid OS parameters"
  local disk=${DISK_0_PATH-} style fstype kernel=no swapdisk='' size need tar img tmp dev uuid swap_uuid='' root keys=''
  [[ -n $disk ]] || gos_die "disk 0 has no DISK_0_PATH: this definition needs a disk the node can open"
  style=$(gos_param partition-style)
  fstype=$(gos_param filesystem)
  if deb_want_kernel; then
    kernel=yes
    [[ $style != none ]] ||
      gos_die "partition-style none leaves no room for a boot loader: use partition-style msdos or gpt, or install-kernel=no with the hypervisor's kernel_path"
    [[ $ARCH == amd64 || $ARCH == i386 ]] ||
      gos_die "a boot loader is installed only for amd64 and i386 (ARCH is $ARCH): use install-kernel=no with the hypervisor's kernel_path"
  fi
  if [[ $(gos_param network) == static && -z ${NIC_0_IP-} ]]; then
    gos_die "parameter network is static but NIC 0 has no IP address (set one with --net 0:ip=...)"
  fi
  deb_plan_network
  if [[ $(gos_param swap) == yes ]]; then
    ((DISK_COUNT >= 2)) || gos_die "parameter swap=yes needs a second disk (disk 1) to use as swap"
    swapdisk=${DISK_1_PATH-}
    [[ -n $swapdisk ]] || gos_die "parameter swap=yes: disk 1 has no DISK_1_PATH"
  fi
  deb_fault check
  size=$(gos_disk_size "$disk")
  if ((size < MIN_DISK_MIB * 1048576)); then
    gos_die "disk 0 is too small: $((size / 1048576)) MiB, this definition needs at least $MIN_DISK_MIB MiB (MIN_DISK_MIB)"
  fi

  gos_mktemp_dir tmp
  # On reinstall, keep what the instance's clients know it by before anything is overwritten.
  if [[ ${INSTANCE_REINSTALL-} == 1 ]]; then
    deb_fault reinstall
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
  fi
  deb_fault install
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

  deb_fault partition
  deb_partition "$disk" "$style"
  deb_locate_root "$disk"
  deb_fault attach
  deb_attach_range "$disk" "$DEB_ROOT_OFFSET" "$DEB_ROOT_SIZE" dev
  deb_fault mkfs
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
  deb_fault mount
  root=$tmp/root
  deb_mount "$dev" "$root"
  deb_fault extract
  if [[ -z $img ]]; then
    tar --numeric-owner --xattrs --xattrs-include='*' --acls -xpf "$tar" -C "$root" ||
      gos_die "could not unpack the base system into disk 0"
  fi

  deb_fault configure
  deb_scrub_node_settings "$root"
  deb_write_names "$root"
  deb_write_fstab "$root" "$fstype" "$uuid" "$swap_uuid"
  deb_write_apt_sources "$root"
  deb_write_network "$root"
  deb_write_resolv_conf "$root"
  deb_write_console "$root"
  deb_write_root_access "$root"
  deb_write_host_keys "$root" "$keys" "$tmp/newkeys"
  : >"$root/etc/machine-id"
  deb_keep_machine_id "$root" "$keys"
  rm -f -- "$root/var/lib/systemd/random-seed" "$root/etc/udev/rules.d/70-persistent-net.rules"
  find "$root/var/cache/apt/archives" -type f -name '*.deb' -delete 2>/dev/null || true

  if [[ $kernel == yes ]]; then
    deb_fault bootloader
    deb_write_grub_config "$root" "$uuid"
    deb_install_grub "$disk" "$style" "$root"
  fi
  deb_fault hooks
  deb_run_hooks "$root" "$disk" "$dev"
  deb_fault finish
  gos_log "installed $SUITE ($ARCH) on $INSTANCE_NAME: $fstype root $uuid, partition style $style, kernel and boot loader: $kernel"
}

# --- export / import ------------------------------------------------------------------------

# deb_compressor METHOD: the payload filter of an export stream, in DEB_FILTER.
deb_compressor() {
  case $1 in
    none) DEB_FILTER=(cat) ;;
    gzip) DEB_FILTER=(gzip -1) ;;
    zstd) DEB_FILTER=(zstd -q -T0 -3) ;;
    *) gos_die "EXPORT_COMPRESS must be none, gzip or zstd, not '$1'" ;;
  esac
  command -v "${DEB_FILTER[0]}" >/dev/null || gos_die "EXPORT_COMPRESS is $1 but ${DEB_FILTER[0]} is not installed"
}

# deb_decompressor METHOD: the filter reading it back, in DEB_FILTER.
deb_decompressor() {
  case $1 in
    none) DEB_FILTER=(cat) ;;
    gzip) DEB_FILTER=(gzip -dc) ;;
    zstd) DEB_FILTER=(zstd -dcq) ;;
    *) gos_die "the stream is compressed with '$1', which this definition cannot read" ;;
  esac
  command -v "${DEB_FILTER[0]}" >/dev/null || gos_die "the stream is compressed with $1 but ${DEB_FILTER[0]} is not installed"
}

DEB_TAR_OPTS=(--numeric-owner --xattrs --xattrs-include='*' --acls --sparse --one-file-system)

gos_step_export() {
  deb_settings
  local disk=$EXPORT_DEVICE tmp dev fstype kind=raw style=none uuid='' label='' boot=none header size tarsize compress
  compress=$EXPORT_COMPRESS
  deb_compressor "$compress"
  gos_mktemp_dir tmp
  deb_fault export-locate
  fstype=$(deb_fs_type "$disk")
  if [[ $fstype == swap ]]; then
    kind=swap
    uuid=$(blkid -p -o value -s UUID -- "$disk" 2>/dev/null || true)
    label=$(blkid -p -o value -s LABEL -- "$disk" 2>/dev/null || true)
  else
    local pttype
    pttype=$(blkid -p -o value -s PTTYPE -- "$disk" 2>/dev/null || true)
    if [[ $pttype == dos || $pttype == gpt || $fstype == ext[234] ]]; then
      deb_locate_root "$disk"
      deb_attach_range "$disk" "$DEB_ROOT_OFFSET" "$DEB_ROOT_SIZE" dev ro
      fstype=$(deb_fs_type "$dev")
      if [[ $fstype == ext[234] ]]; then
        kind=fs style=$DEB_STYLE
        uuid=$(blkid -p -o value -s UUID -- "$dev" 2>/dev/null || true)
        label=$(blkid -p -o value -s LABEL -- "$dev" 2>/dev/null || true)
      fi
    fi
  fi
  size=$(gos_disk_size "$disk")
  if [[ $kind == fs ]]; then
    deb_fault export-mount
    deb_mount_ro "$dev" "$tmp/root"
    if [[ -f $tmp/root/boot/grub/i386-pc/core.img && -f $tmp/root/boot/grub/grub.cfg ]]; then boot=grub-bios; fi
  fi
  header=$(printf '%s\n' "$DEB_STREAM_MAGIC" "kind=$kind" "style=$style" "fstype=$fstype" "uuid=$uuid" \
    "label=$label" "bootloader=$boot" "compress=$compress" "size=$size" "end")
  header+=$'\n'
  case $kind in
    fs)
      # GNU tar writing to /dev/null reads no file data: it just counts the archive's bytes.
      tarsize=$(tar "${DEB_TAR_OPTS[@]}" -C "$tmp/root" --totals -cf /dev/null . 2>&1 >/dev/null |
        sed -n 's/^Total bytes written: \([0-9]*\).*/\1/p')
      if [[ $compress == none && -n $tarsize ]]; then gos_announce_size $((${#header} + tarsize)); fi
      ;;
    swap) gos_announce_size "${#header}" ;;
    raw) if [[ $compress == none ]]; then gos_announce_size $((${#header} + size)); fi ;;
  esac
  gos_log "exporting disk $EXPORT_INDEX as a ${kind} stream${fstype:+ ($fstype, partition style $style)}"
  deb_fault export-stream
  printf '%s' "$header"
  case $kind in
    fs) tar "${DEB_TAR_OPTS[@]}" -C "$tmp/root" -cf - . | "${DEB_FILTER[@]}" ;;
    raw) dd if="$disk" bs=1M status=none | "${DEB_FILTER[@]}" ;;
    swap) ;;
  esac
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
  [[ ${DEB_HDR[size]:-0} =~ ^[0-9]+$ ]] || gos_die "the import stream's header is damaged (size '${DEB_HDR[size]}')"
  [[ -z ${DEB_HDR[uuid]-} || ${DEB_HDR[uuid]} =~ ^[0-9a-fA-F-]+$ ]] || gos_die "the import stream's header is damaged (uuid '${DEB_HDR[uuid]}')"
  [[ ${DEB_HDR[label]-} =~ ^[A-Za-z0-9_.-]*$ ]] || gos_die "the import stream's header is damaged (label '${DEB_HDR[label]}')"
}

gos_step_import() {
  deb_settings
  local disk=$IMPORT_DEVICE tmp dev uuid root size old style fstype kind extra
  gos_mktemp_dir tmp
  deb_read_header
  deb_check_header
  kind=${DEB_HDR[kind]-} style=${DEB_HDR[style]-none} fstype=${DEB_HDR[fstype]-}
  deb_decompressor "${DEB_HDR[compress]-none}"
  size=$(gos_disk_size "$disk")
  deb_fault import-check
  case $kind in
    raw)
      ((size >= ${DEB_HDR[size]:-0})) || gos_die "disk $IMPORT_INDEX is smaller ($size bytes) than the exported disk (${DEB_HDR[size]} bytes)"
      # Never more bytes than the disk holds: a file-backed disk must not grow.
      "${DEB_FILTER[@]}" | {
        dd of="$disk" bs=1M iflag=fullblock,count_bytes count="$size" conv=notrunc,fsync status=none || exit 1
        extra=$(head -c 1 | wc -c)
        ((extra == 0)) || exit 2
      } || gos_die "could not write the raw stream onto disk $IMPORT_INDEX ($disk, $size bytes): is it smaller than the exported disk?"
      gos_log "imported disk $IMPORT_INDEX (raw)"
      return 0
      ;;
    swap)
      mkswap ${DEB_HDR[uuid]:+-U "${DEB_HDR[uuid]}"} ${DEB_HDR[label]:+-L "${DEB_HDR[label]}"} -- "$disk" >/dev/null ||
        gos_die "could not make swap on $disk"
      gos_log "imported disk $IMPORT_INDEX (swap)"
      return 0
      ;;
    fs) ;;
    *) gos_die "the import stream holds a disk of unknown kind '$kind'" ;;
  esac
  [[ $fstype == ext[234] ]] || gos_die "the import stream holds an unsupported filesystem '$fstype'"
  [[ $style == msdos || $style == gpt || $style == none ]] || gos_die "the import stream has an unknown partition style '$style'"
  ((size >= MIN_DISK_MIB * 1048576 / 2)) || gos_die "disk $IMPORT_INDEX is too small: $((size / 1048576)) MiB"
  deb_fault import-partition
  deb_partition "$disk" "$style"
  deb_locate_root "$disk"
  deb_attach_range "$disk" "$DEB_ROOT_OFFSET" "$DEB_ROOT_SIZE" dev
  # The root disk gets a new filesystem UUID (fstab and the boot loader follow it); another disk
  # keeps its UUID, so that the instance's own fstab still finds it.
  old=${DEB_HDR[uuid]-}
  if [[ $IMPORT_INDEX == 0 || -z $old ]]; then uuid=$(deb_new_uuid); else uuid=$old; fi
  deb_mkfs "$fstype" "$dev" "$uuid" "${DEB_HDR[label]:-root}"
  root=$tmp/root
  deb_mount "$dev" "$root"
  deb_fault import-extract
  "${DEB_FILTER[@]}" | tar "${DEB_TAR_OPTS[@]}" -xpf - -C "$root" ||
    gos_die "could not unpack the stream onto disk $IMPORT_INDEX (is the disk large enough for the exported files?)"
  if [[ -n $old && $old != "$uuid" && -f $root/etc/fstab ]]; then
    sed -i -e "s/UUID=$old\b/UUID=$uuid/g" "$root/etc/fstab"
  fi
  if [[ ${DEB_HDR[bootloader]-} == grub-bios ]]; then
    deb_fault import-bootloader
    if [[ -n $old && $old != "$uuid" && -f $root/boot/grub/grub.cfg ]]; then
      sed -i -e "s/$old/$uuid/g" "$root/boot/grub/grub.cfg"
    fi
    deb_install_grub "$disk" "$style" "$root"
  fi
  deb_fault import-finish
  gos_log "imported disk $IMPORT_INDEX: $fstype root $uuid (was $old), partition style $style"
  # Identity (lib/debian-identity.sh): the rename Ganeti runs next reads this marker.
  if [[ $IMPORT_INDEX == 0 ]]; then deb_mark_imported "$root"; fi
}

# --- rename ---------------------------------------------------------------------------------

gos_step_rename() {
  deb_settings
  local disk=${DISK_0_PATH-} tmp dev root current
  [[ -n $disk ]] || gos_die "disk 0 has no DISK_0_PATH"
  gos_mktemp_dir tmp
  deb_fault rename-locate
  deb_locate_root "$disk"
  deb_attach_range "$disk" "$DEB_ROOT_OFFSET" "$DEB_ROOT_SIZE" dev
  root=$tmp/root
  deb_mount "$dev" "$root"
  current=$(head -n 1 "$root/etc/hostname" 2>/dev/null || true)
  if [[ $current != "$OLD_INSTANCE_NAME" && $current != "$INSTANCE_NAME" &&
    $current != "$(deb_short_name "$OLD_INSTANCE_NAME")" && $current != "$(deb_short_name "$INSTANCE_NAME")" ]]; then
    gos_die "the instance's hostname is '$current', neither the old name $OLD_INSTANCE_NAME nor the new name $INSTANCE_NAME: not renaming a system this definition did not set up"
  fi
  deb_fault rename-write
  deb_plan_network
  deb_write_names "$root" "$OLD_INSTANCE_NAME"
  if compgen -G "$root/etc/systemd/network/10-ganeti-nic*.network" >/dev/null; then
    deb_write_network "$root"
  fi
  deb_fault rename-identity
  deb_rename_identity "$root" "$tmp"
  if [[ $OLD_INSTANCE_NAME == "$INSTANCE_NAME" ]]; then
    gos_log "instance $INSTANCE_NAME: name unchanged; names and addresses rewritten"
  else
    gos_log "renamed $OLD_INSTANCE_NAME to $INSTANCE_NAME"
  fi
}
