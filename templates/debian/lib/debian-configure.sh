# shellcheck shell=bash
# Configuring the system the 'debian' template installs: names, fstab, apt sources, console,
# root access, SSH host keys, the boot loader's configuration and the site's hooks. Sourced by
# lib/steps.sh.

# deb_write_names ROOT [OLD]: hostname, mailname and /etc/hosts for INSTANCE_NAME. Lines of
# /etc/hosts naming OLD or the new name are replaced; everything else is kept.
deb_write_names() {
  local root=$1 old=${2-} short tmp
  short=$(gos_short_name "$INSTANCE_NAME")
  printf '%s\n' "$INSTANCE_NAME" >"$root/etc/hostname"
  printf '%s\n' "$INSTANCE_NAME" >"$root/etc/mailname"
  tmp=$root/etc/.hosts.ganeti-os
  {
    if [[ -f $root/etc/hosts ]]; then
      awk -v a="$old" -v b="$(gos_short_name "$old")" -v c="$INSTANCE_NAME" -v d="$short" '
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

# deb_write_grow_root ROOT: a service of the instance's own, early at every boot: when the disk
# under the root filesystem has grown (gnt-instance grow-disk, an import into a larger disk),
# partition 1 and the filesystem are grown to fill it (lib/grow-root.sh; only base-system tools).
deb_write_grow_root() {
  local root=$1 unit=ganeti-os-grow-root.service
  install -d -m 0755 -- "$root/usr/local/lib/ganeti-os" "$root/etc/systemd/system/sysinit.target.wants"
  install -m 0755 -- "$GOS_DIR/lib/grow-root.sh" "$root/usr/local/lib/ganeti-os/grow-root" ||
    gos_die "could not install the grow-root service into the instance"
  printf '%s\n' "# Written by the $GOS_OS_NAME OS definition." '[Unit]' \
    'Description=Grow the root partition and filesystem into a grown disk' \
    'DefaultDependencies=no' 'Conflicts=shutdown.target' 'After=systemd-remount-fs.service' \
    'Before=sysinit.target shutdown.target' 'ConditionPathIsReadWrite=/' '' \
    '[Service]' 'Type=oneshot' 'RemainAfterExit=yes' 'ExecStart=/usr/local/lib/ganeti-os/grow-root' \
    'StandardOutput=journal+console' '' '[Install]' 'WantedBy=sysinit.target' >"$root/etc/systemd/system/$unit"
  ln -sfn "../$unit" "$root/etc/systemd/system/sysinit.target.wants/$unit"
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
      gos_fault reinstall-mounted
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
