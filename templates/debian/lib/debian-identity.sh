# shellcheck shell=bash
# The identity of an instance of the 'debian' template: what makes it one machine among others
# (SSH host keys, machine-id, DHCP client identity and leases, random seed, systemd's credential
# secret). create makes a new one, reinstall keeps it, and an import followed by a rename to a
# different name (a copy: gnt-backup import under a new name) makes a new one, unless the
# copy-identity parameter says keep. Ganeti runs rename after every import with the exported
# instance's name as the old name, but a plain gnt-instance rename has different names too:
# import therefore leaves a marker on the disk that the next rename consumes. Sourced by
# lib/steps.sh.

# Where import leaves its marker, relative to the root filesystem.
DEB_IMPORT_MARKER=var/lib/ganeti-os/imported

# deb_mark_imported ROOT: (import, disk 0, data in place) mark the disk as just imported.
deb_mark_imported() {
  local root=$1
  # Only a system has an identity to renew; a data filesystem gains no directories of ours.
  if [[ ! -d $root/var/lib || -L $root/var/lib ]]; then
    gos_log "disk 0 has no /var/lib: not a system whose identity a rename would renew; no import marker"
    return 0
  fi
  if ! mkdir -p -- "$root/${DEB_IMPORT_MARKER%/*}" ||
    ! printf 'instance=%s\nuuid=%s\ntime=%s\n' "${INSTANCE_NAME-}" "${INSTANCE_UUID-}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$root/$DEB_IMPORT_MARKER"; then
    gos_die "could not write the import marker /$DEB_IMPORT_MARKER on disk 0"
  fi
  gos_log "disk 0 marked as imported: the rename Ganeti runs next gives it a new identity if its name changes"
}

# deb_rename_identity ROOT TMP: (rename) keep the disk's identity, or give it a new one when it
# was just imported (marker) under a name other than the exported one. Says which and why.
deb_rename_identity() {
  local root=$1 tmp=$2 marker=$1/$DEB_IMPORT_MARKER imported_as
  # A marker written for another name is stale (the rename after that import failed, which
  # Ganeti only warns about): this is a plain rename.
  if [[ -f $marker ]]; then
    imported_as=$(sed -n 's/^instance=//p' -- "$marker" | head -n 1)
    if [[ $imported_as != "$INSTANCE_NAME" ]]; then
      gos_log "warning: removed a stale import marker (written when importing as '$imported_as', not as $INSTANCE_NAME)"
      rm -f -- "$marker"
    fi
  fi
  if [[ ! -f $marker ]]; then
    if [[ $OLD_INSTANCE_NAME == "$INSTANCE_NAME" ]]; then
      gos_log "identity kept: no import marker on the disk and the name is unchanged"
    else
      gos_log "identity kept: a plain rename (no import marker on the disk), the same machine under a new name"
    fi
    return 0
  fi
  rm -f -- "$marker"
  rmdir -- "${marker%/*}" 2>/dev/null || true
  if [[ $OLD_INSTANCE_NAME == "$INSTANCE_NAME" ]]; then
    gos_log "identity kept: imported under its exported name $INSTANCE_NAME (a restore)"
    return 0
  fi
  if [[ $(gos_param copy-identity) == keep ]]; then
    gos_log "identity kept: imported from $OLD_INSTANCE_NAME as $INSTANCE_NAME, and copy-identity is keep"
    return 0
  fi
  gos_log "new identity: imported from $OLD_INSTANCE_NAME as $INSTANCE_NAME (a copy; copy-identity=keep would keep it)"
  deb_new_identity "$root" "$tmp"
}

# deb_new_identity ROOT TMP: make the system on ROOT a new machine: new SSH host keys (made as
# create makes them), an empty /etc/machine-id (systemd makes a new one at the next boot, and
# with it a new DHCP DUID), no D-Bus machine-id of its own, random seed, credential secret or DHCP
# client state (leases and DUIDs of dhclient, dhcpcd and NetworkManager), no /etc/hostid.
deb_new_identity() {
  local root=$1 tmp=$2
  if [[ -d $root/etc/ssh ]]; then
    command -v ssh-keygen >/dev/null || gos_die "ssh-keygen is missing on this node (apt-get install openssh-client)"
    deb_start_host_keys "$tmp/newkeys"
    deb_write_host_keys "$root" '' "$tmp/newkeys"
    gos_log "made new SSH host keys for $INSTANCE_NAME"
  fi
  : >"$root/etc/machine-id"
  if [[ -e $root/var/lib/dbus/machine-id && ! -L $root/var/lib/dbus/machine-id ]]; then
    rm -f -- "$root/var/lib/dbus/machine-id"
  fi
  rm -f -- "$root/var/lib/systemd/random-seed" "$root/var/lib/systemd/credential.secret" "$root/etc/hostid" \
    "$root"/var/lib/dhcp/*.leases "$root"/var/lib/dhcp/*.lease \
    "$root"/var/lib/dhcpcd/*.lease "$root"/var/lib/dhcpcd/*.lease6 "$root/var/lib/dhcpcd/duid" "$root/etc/dhcpcd.duid" \
    "$root"/var/lib/NetworkManager/*.lease "$root/var/lib/NetworkManager/secret_key"
  gos_log "emptied /etc/machine-id (systemd makes a new one at the next boot) and removed the random seed and DHCP client state"
}

# deb_save_machine_id ROOT DIR: (reinstall) copy the old system's machine-id into DIR.
deb_save_machine_id() {
  if [[ -s $1/etc/machine-id ]]; then cp -p -- "$1/etc/machine-id" "$2/machine-id" 2>/dev/null || true; fi
}

# deb_keep_machine_id ROOT DIR: (reinstall) the machine-id saved in DIR, if any, for the new
# system on ROOT; otherwise it stays empty and systemd makes one at the first boot.
deb_keep_machine_id() {
  local root=$1 saved=$2
  if [[ -n $saved && -s $saved/machine-id ]]; then
    cat -- "$saved/machine-id" >"$root/etc/machine-id" || gos_die "could not write the kept machine-id"
    gos_log "reinstall: kept the instance's machine-id"
  fi
}
