# shellcheck shell=bash
# Steps of the 'debian' template: create installs Debian (or Ubuntu) onto disk 0, export/import
# move a disk as a file-level stream, rename renames the installed system, verify checks the OS
# parameters. Sourced by lib/runtime.sh, which provides the gos_* helpers and the cleanup stack.

# shellcheck source=/dev/null
. "$GOS_DIR/lib/raw-stream.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/dns-servers.sh"
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
    dns-servers) gos_check_dns_servers "$2" || return 1 ;;
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

# deb_write_console ROOT: a getty on the serial console the hypervisor offers, and a console
# that stays quiet once the system runs: kernel.printk lets only critical kernel messages
# (levels 0-2: panics, oopses) through after systemd-sysctl, early in userspace. Everything
# before it (the kernel's boot, the initramfs, mounting the root) still shows, and dmesg and
# the journal keep every message. Not the kernel command line: that would hide the messages
# of a boot that fails before userspace, and kernel_path boots take Ganeti's kernel_args.
deb_write_console() {
  local root=$1 port
  mkdir -p -- "$root/etc/sysctl.d"
  printf '# Written by the %s OS definition: kernel messages below critical stay off the console\n# once the system runs (dmesg and the journal keep them). Boot messages are not affected.\nkernel.printk = 3 4 1 7\n' \
    "$GOS_OS_NAME" >"$root/etc/sysctl.d/90-ganeti-os-console.conf"
  port=$(deb_serial_port)
  [[ -n $port ]] || return 0
  mkdir -p -- "$root/etc/systemd/system/getty.target.wants" "$root/etc/systemd/system/dev-$port.device.d"
  ln -sfn /lib/systemd/system/serial-getty@.service "$root/etc/systemd/system/getty.target.wants/serial-getty@$port.service"
  # A slow boot (a loaded node, software emulation) must not lose the serial getty: systemd
  # otherwise gives up on the console's device after 90 s (DefaultDeviceTimeoutSec).
  printf '[Unit]\nJobRunningTimeoutSec=15min\n' >"$root/etc/systemd/system/dev-$port.device.d/90-ganeti-os.conf"
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

# deb_kernel_version ROOT: the version of the newest kernel in ROOT/boot (vmlinuz-VERSION), or nothing.
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
      gos_push_cleanup gos_umount "$mnt"
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
    # mkswap runs after disk 0 is written: its disk must be fit for it before anything is.
    (($(gos_disk_size "$swapdisk") >= 1048576)) || gos_die "parameter swap=yes: disk 1 ($swapdisk) is smaller than 1 MiB, too small for swap"
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

gos_step_export() {
  deb_settings
  local disk=$EXPORT_DEVICE tmp dev='' kind fstype style=none uuid='' label='' boot=none header size compress plan='' used='' fssize='' format=$EXPORT_FORMAT
  compress=$EXPORT_COMPRESS
  deb_compressor "$compress"
  case $format in
    blocks | files) ;;
    *) gos_die "EXPORT_FORMAT must be blocks or files, not '$format'" ;;
  esac
  gos_mktemp_dir tmp
  deb_fault export-locate
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
      deb_attach_range "$disk" "$DEB_ROOT_OFFSET" "$DEB_ROOT_SIZE" dev ro
      uuid=$(blkid -p -o value -s UUID -- "$dev" 2>/dev/null || true)
      label=$(blkid -p -o value -s LABEL -- "$dev" 2>/dev/null || true)
      deb_ext_info "$dev"
      fssize=$((DEB_FS_BLOCK * DEB_FS_BLOCKS))
      used=$((DEB_FS_BLOCK * (DEB_FS_BLOCKS - DEB_FS_FREE)))
      deb_fault export-mount
      # Read-only, without replaying a journal: only to see what the disk boots with.
      deb_mount_ro "$dev" "$tmp/root"
      if [[ -f $tmp/root/boot/grub/i386-pc/core.img && -f $tmp/root/boot/grub/grub.cfg ]]; then boot=grub-bios; fi
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
    "label=$label" "bootloader=$boot" "compress=$compress" "size=$size" ${fssize:+"fssize=$fssize"} ${used:+"used=$used"} "end")
  header+=$'\n'
  # The stream's size from the filesystem's own counters (the block plan, or the bytes in use).
  case $kind in
    fsblocks) if [[ $compress == none ]]; then gos_announce_size $((${#header} + $(deb_blocks_size "$plan"))); fi ;;
    fs) if [[ $compress == none ]]; then gos_announce_size $((${#header} + used)); fi ;;
    swap) gos_announce_size "${#header}" ;;
  esac
  gos_log "exporting disk $EXPORT_INDEX as a ${kind} stream${fstype:+ ($fstype, partition style $style)}"
  deb_fault export-stream
  printf '%s' "$header"
  case $kind in
    fsblocks)
      deb_to_payload deb_blocks_out "$dev" "$plan" || gos_die "could not read the filesystem on disk $EXPORT_INDEX"
      ;;
    fs) deb_to_payload tar "${DEB_TAR_OPTS[@]}" -C "$tmp/root" -cf - . ;;
    raw) gos_raw_export "$disk" "$compress" "${#header}" ;;
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
  deb_target_root_size "$disk" "${DEB_HDR[style]}"
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

gos_step_import() {
  deb_settings
  local disk=$IMPORT_DEVICE tmp dev uuid root size old style fstype kind img sdev
  gos_mktemp_dir tmp
  deb_read_header
  deb_check_header
  kind=${DEB_HDR[kind]-} style=${DEB_HDR[style]-none} fstype=${DEB_HDR[fstype]-}
  deb_decompressor "${DEB_HDR[compress]-none}"
  size=$(gos_disk_size "$disk")
  deb_fault import-check
  case $kind in
    raw)
      deb_fault import-raw
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
  deb_import_plan "$disk"
  # The root disk gets a new filesystem UUID (fstab and the boot loader follow it); another disk
  # keeps its UUID, so that the instance's own fstab still finds it.
  old=${DEB_HDR[uuid]-}
  if [[ $IMPORT_INDEX == 0 || -z $old ]]; then uuid=$(deb_new_uuid); else uuid=$old; fi
  if [[ $DEB_MODE == stage ]]; then
    # The blocks go to a sparse scratch image first (nothing on the disk yet).
    img=$tmp/stage.img
    truncate -s "${DEB_HDR[fssize]}" -- "$img" || gos_die "cannot make a scratch image in $tmp"
    deb_attach_range "$img" 0 "${DEB_HDR[fssize]}" sdev
    deb_from_payload deb_blocks_in "$sdev" "${DEB_HDR[fssize]}" || gos_die "could not read the block stream for disk $IMPORT_INDEX"
    e2fsck -fy -- "$sdev" >/dev/null 2>&1
    (($? < 4)) || gos_die "the exported filesystem has errors e2fsck cannot fix; nothing was written"
    if [[ $DEB_WANT_FS == "$fstype" ]]; then
      # Shrunk to the partition it will get, while the disk is still untouched.
      resize2fs -- "$sdev" "$((DEB_TARGET_ROOT_SIZE / 1024))K" >/dev/null 2>&1 ||
        gos_die "the files of the exported filesystem do not fit the $((DEB_TARGET_ROOT_SIZE / 1048576)) MiB root partition disk $IMPORT_INDEX would get (resize2fs); nothing was written"
    fi
  fi
  deb_fault import-partition
  deb_partition "$disk" "$style"
  deb_locate_root "$disk"
  deb_attach_range "$disk" "$DEB_ROOT_OFFSET" "$DEB_ROOT_SIZE" dev
  root=$tmp/root
  deb_fault import-extract
  case $DEB_MODE in
    direct)
      deb_from_payload deb_blocks_in "$dev" "$DEB_ROOT_SIZE" || gos_die "could not write the block stream onto disk $IMPORT_INDEX"
      deb_tune_new_fs "$dev" "$uuid"
      deb_mount "$dev" "$root"
      ;;
    stage)
      if [[ $DEB_WANT_FS == "$fstype" ]]; then
        e2image -ra -- "$sdev" "$dev" >/dev/null 2>&1 || gos_die "could not copy the filesystem onto disk $IMPORT_INDEX (e2image)"
        deb_tune_new_fs "$dev" "$uuid"
        deb_mount "$dev" "$root"
      else
        deb_mkfs "$DEB_WANT_FS" "$dev" "$uuid" "${DEB_HDR[label]:-root}"
        deb_mount "$dev" "$root"
        deb_mount_ro "$sdev" "$tmp/stage"
        (
          set -o pipefail
          tar "${DEB_TAR_OPTS[@]}" -C "$tmp/stage" -cf - . | tar "${DEB_TAR_OPTS[@]}" -xpf - -C "$root"
        ) || gos_die "could not copy the files into the new $DEB_WANT_FS filesystem of disk $IMPORT_INDEX"
      fi
      ;;
    files)
      deb_mkfs "$DEB_WANT_FS" "$dev" "$uuid" "${DEB_HDR[label]:-root}"
      deb_mount "$dev" "$root"
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
  if [[ ${DEB_HDR[bootloader]-} == grub-bios ]]; then
    deb_fault import-bootloader
    if [[ -n $old && $old != "$uuid" && -f $root/boot/grub/grub.cfg ]]; then
      sed -i -e "s/$old/$uuid/g" "$root/boot/grub/grub.cfg"
    fi
    deb_install_grub "$disk" "$style" "$root"
  fi
  deb_fault import-finish
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
