# shellcheck shell=bash
# Steps of the 'image' template: create writes the variant's cloud image onto disk 0, grows its
# root and delivers a cloud-init NoCloud seed; export/import move a disk as a compressed raw
# stream; rename gives the seed (and an ext2/3/4 root's hostname files) the new name; verify
# checks the parameters and that the variant's image can be had.
# Sourced by lib/runtime.sh, which provides the gos_* helpers and the cleanup stack.

# shellcheck source=/dev/null
. "$GOS_DIR/lib/raw-stream.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/dns-servers.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/host-names.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/image-cache.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/image-disk.sh"
# shellcheck source=/dev/null
. "$GOS_DIR/lib/image-seed.sh"

# --- parameters -----------------------------------------------------------------------------

# Checks beyond choices and patterns (called by gos_check_params for each parameter given).
gos_check_param() {
  case $1 in
    dns-servers) gos_check_dns_servers "$2" || return 1 ;;
    user-data)
      if [[ -n $2 && ! (-f $2 && -r $2) ]]; then
        gos_log "invalid value '$2' for parameter user-data: no readable file $2 on this node (it must exist on every node)"
        return 1
      fi
      ;;
  esac
  return 0
}

# img_check_instance: what create needs from Ganeti's instance, before anything is touched.
img_check_instance() {
  local route
  route=$(gos_param default-route-nic)
  if [[ $route != auto ]] && ((route >= ${NIC_COUNT:-0})); then
    gos_die "parameter default-route-nic is $route but the instance has ${NIC_COUNT:-0} NIC(s)"
  fi
}

# img_with_root DISK TMP ACTION: mount the root partition IMG_ROOT of DISK (IMG_PART_* from a
# scan) on TMP/root, run ACTION ROOT, release it again.
img_with_root() {
  local disk=$1 tmp=$2 dev
  shift 2
  img_attach_part "$disk" "$IMG_ROOT" dev
  img_mount "$dev" "$tmp/root" "$IMG_ROOT_FS"
  "$@" "$tmp/root"
  gos_pop_cleanup
  gos_pop_cleanup
}

# --- create ---------------------------------------------------------------------------------

gos_step_create() {
  img_settings
  gos_check_params || gos_die "invalid OS parameters"
  local disk=${DISK_0_PATH-} size seed_disk seed_format tmp id
  [[ -n $disk ]] || gos_die "disk 0 has no DISK_0_PATH: this definition needs a disk the node can open"
  seed_disk=$(img_seed_disk_path)
  seed_format=$(gos_param seed-format)
  img_check_instance
  gos_mktemp_dir tmp
  gos_fault check
  # Everything about the image is checked before the disk is touched.
  img_obtain
  img_pick_root "the image $IMAGE"
  if [[ -z $seed_disk ]]; then
    [[ -n $IMG_ROOT ]] ||
      gos_die "found no ext2/3/4, xfs or btrfs root partition in the image $IMAGE (partitions: ${IMG_PARTS[*]:-none}): set ROOT_PARTITION for variant '${GOS_VARIANT:-default}', or name a seed disk with parameter seed-disk"
    img_is_ext "$IMG_ROOT_FS" ||
      gos_die "the root filesystem of the image (partition $IMG_ROOT) is ${IMG_ROOT_FS}: the cloud-init seed is written only into ext2/3/4 roots; give the instance a small extra disk and name it with parameter seed-disk (e.g. seed-disk=1) to get a 'cidata' volume there"
  fi
  size=$(gos_disk_size "$disk")
  ((size >= IMG_VSIZE)) ||
    gos_die "disk 0 ($disk) is too small: $((size / 1048576)) MiB, the image needs $(((IMG_VSIZE + 1048575) / 1048576)) MiB (nothing was written)"
  if [[ -n $seed_disk ]] && (($(gos_disk_size "$seed_disk") < 1048576)); then
    gos_die "the seed disk $(gos_param seed-disk) ($seed_disk) is smaller than 1 MiB"
  fi
  id=$(img_new_instance_id)
  img_make_seed "$tmp/seed" "$id"
  gos_log "instance $INSTANCE_NAME${INSTANCE_REINSTALL:+ (reinstall)}: writing $IMAGE ($IMG_FORMAT, $(((IMG_VSIZE + 1048575) / 1048576)) MiB) onto disk 0 ($((size / 1048576)) MiB)"
  gos_fault write
  img_write "$disk"
  gos_fault grow
  img_fix_gpt "$disk"
  img_scan_disk "$disk"
  if [[ $(gos_param grow-root) == yes ]]; then img_grow_root "$disk" "$tmp"; fi
  gos_fault seed
  if [[ -n $seed_disk ]]; then
    img_put_seed_disk "$seed_disk" "$seed_format" "$tmp/seed" "$tmp"
    gos_log "cloud-init seed on disk $(gos_param seed-disk) ($seed_format 'cidata' volume), instance-id $id"
  else
    img_with_root "$disk" "$tmp" img_put_seed_root_from "$tmp/seed"
    gos_log "cloud-init seed in /$IMG_SEED_DIR of the root filesystem (partition $IMG_ROOT), instance-id $id"
  fi
  if [[ -n $seed_disk && -n $IMG_ROOT ]] && img_is_ext "$IMG_ROOT_FS"; then
    img_with_root "$disk" "$tmp" img_write_hostname
  fi
  gos_log "$(img_firmware_text "$disk")"
  gos_fault finish
}

# img_put_seed_root_from SEED ROOT: (argument order for img_with_root) the seed, and the
# guest's /etc/hostname.
img_put_seed_root_from() {
  img_put_seed_root "$2" "$1"
  img_write_hostname "$2"
}

# img_write_hostname ROOT: the guest's /etc/hostname (where the image has one) names
# INSTANCE_NAME before its first boot: short, or in full when the image's was a full name.
# cloud-init sets the running name from the seed's local-hostname at every boot.
img_write_hostname() {
  local root=$1 current new
  [[ -f $root/etc/hostname && ! -L $root/etc/hostname && ! -L $root/etc ]] || return 0
  current=$(head -n 1 -- "$root/etc/hostname")
  new=$(gos_short_name "$INSTANCE_NAME")
  if [[ $current == *.* ]]; then new=$INSTANCE_NAME; fi
  printf '%s\n' "$new" >"$root/etc/hostname" || gos_die "could not write the guest's /etc/hostname"
}

# --- export / import ------------------------------------------------------------------------

gos_step_export() {
  img_settings
  gos_raw_stream_export "$EXPORT_DEVICE" "$EXPORT_COMPRESS"
}

gos_step_import() {
  img_settings
  local tmp seed_disk seed_index
  gos_mktemp_dir tmp
  gos_fault import
  gos_raw_stream_import "$IMPORT_DEVICE" >/dev/null
  gos_fault import-finish
  seed_index=$(gos_param seed-disk)
  if ((IMPORT_INDEX == 0)); then
    # A larger disk: the GPT backup header goes to its end, the root grows into the rest.
    img_fix_gpt "$IMPORT_DEVICE"
    img_scan_disk "$IMPORT_DEVICE"
    img_pick_root "disk 0"
    if [[ $(gos_param grow-root) == yes ]]; then img_grow_root "$IMPORT_DEVICE" "$tmp"; fi
    if [[ $seed_index == root && -n $IMG_ROOT ]] && img_is_ext "$IMG_ROOT_FS"; then
      img_with_root "$IMPORT_DEVICE" "$tmp" img_mark_root
    fi
  elif [[ $seed_index == "$IMPORT_INDEX" ]]; then
    seed_disk=$IMPORT_DEVICE
    if img_get_seed_disk "$seed_disk" "$tmp/seed"; then
      img_mark_file "$tmp/seed/meta-data"
      img_put_seed_disk "$seed_disk" "$(img_seed_volume_format "$seed_disk")" "$tmp/seed" "$tmp"
    fi
  fi
  gos_log "imported disk $IMPORT_INDEX"
}

# img_mark_file META: record in meta-data that the disk came from an import (rename reads it).
img_mark_file() {
  grep -qxF -- "$IMG_IMPORTED_MARK" "$1" || printf '%s\n' "$IMG_IMPORTED_MARK" >>"$1"
}

# img_mark_root ROOT: mark the seed in a mounted root, if it has one of ours.
img_mark_root() {
  local meta=$1/$IMG_SEED_DIR/meta-data
  img_guest_dir "$1" "$IMG_SEED_DIR"
  [[ -f $meta && ! -L $meta ]] || return 0
  img_mark_file "$meta"
}

# img_seed_volume_format DISK: vfat or iso, as the seed volume on DISK is.
img_seed_volume_format() {
  if [[ $(blkid -p -o value -s TYPE -- "$1" 2>/dev/null) == iso9660 ]]; then printf iso; else printf vfat; fi
}

# --- rename ---------------------------------------------------------------------------------

# img_get_seed_root SEED ROOT: copy the seed of a mounted root into SEED (our files only).
img_get_seed_root() {
  local seed=$1 root=$2 f
  mkdir -p -- "$seed"
  [[ ! -L $root/var && ! -L $root/var/lib && ! -L $root/var/lib/cloud && ! -L $root/var/lib/cloud/seed && ! -L $root/$IMG_SEED_DIR ]] || return 0
  for f in "${IMG_SEED_FILES[@]}"; do
    if [[ -f $root/$IMG_SEED_DIR/$f && ! -L $root/$IMG_SEED_DIR/$f ]]; then cp -- "$root/$IMG_SEED_DIR/$f" "$seed/$f"; fi
  done
}

# img_rename_guest ROOT: the guest's hostname files for INSTANCE_NAME, and cloud-init's cached
# datasource dropped so that its next boot reads the new seed.
img_rename_guest() {
  local root=$1 tmp
  img_write_hostname "$root"
  if [[ -f $root/etc/hosts && ! -L $root/etc/hosts && ! -L $root/etc ]]; then
    tmp=$root/etc/.hosts.ganeti-os
    awk -v a="$OLD_INSTANCE_NAME" -v b="$(gos_short_name "$OLD_INSTANCE_NAME")" -v c="$INSTANCE_NAME" -v d="$(gos_short_name "$INSTANCE_NAME")" '
      /^[[:space:]]*#/ { print; next }
      { for (i = 2; i <= NF; i++) { if ($i == a) $i = c; else if ($i == b) $i = d } print }' "$root/etc/hosts" >"$tmp" ||
      gos_die "could not rewrite the guest's /etc/hosts"
    chmod --reference="$root/etc/hosts" -- "$tmp" || gos_die "could not rewrite the guest's /etc/hosts"
    mv -f -- "$tmp" "$root/etc/hosts" || gos_die "could not rewrite the guest's /etc/hosts"
  fi
  if [[ -d $root/var/lib/cloud/instances && ! -L $root/var && ! -L $root/var/lib && ! -L $root/var/lib/cloud && ! -L $root/var/lib/cloud/instances ]]; then
    find "$root/var/lib/cloud/instances" -mindepth 2 -maxdepth 2 -name obj.pkl -type f -delete 2>/dev/null || true
  fi
}

# img_rename_root SEED ROOT: the rewritten seed back into a mounted root, hostname files.
img_rename_root() {
  local seed=$1 root=$2
  if [[ -f $seed/meta-data ]]; then img_put_seed_root "$root" "$seed"; fi
  img_rename_guest "$root"
}

gos_step_rename() {
  img_settings
  local disk=${DISK_0_PATH-} tmp seed_disk root_ext=no id old_id
  [[ -n $disk ]] || gos_die "disk 0 has no DISK_0_PATH"
  seed_disk=$(img_seed_disk_path)
  gos_mktemp_dir tmp
  gos_fault rename
  img_scan_disk "$disk"
  img_pick_root "disk 0"
  if [[ -n $IMG_ROOT ]] && img_is_ext "$IMG_ROOT_FS"; then root_ext=yes; fi
  if [[ -n $seed_disk ]]; then
    img_get_seed_disk "$seed_disk" "$tmp/seed" || true
  elif [[ $root_ext == yes ]]; then
    img_with_root "$disk" "$tmp" img_get_seed_root "$tmp/seed"
  fi
  if [[ -f $tmp/seed/meta-data ]]; then
    old_id=$(img_meta_value "$tmp/seed/meta-data" instance-id)
    id=$old_id
    if grep -qxF -- "$IMG_IMPORTED_MARK" "$tmp/seed/meta-data" && [[ $OLD_INSTANCE_NAME != "$INSTANCE_NAME" ]]; then
      # An imported copy under another name is another machine: cloud-init must treat it as a
      # new instance (new SSH host keys, per-instance modules run again).
      id=$(img_new_instance_id)
      gos_log "imported as $INSTANCE_NAME (from $OLD_INSTANCE_NAME): new instance-id $id, so cloud-init sets it up as a new instance"
    fi
    [[ -n $id ]] || id=$(img_new_instance_id)
    img_write_meta_data "$tmp/seed/meta-data" "$id"
  elif [[ $root_ext == no ]]; then
    gos_die "found no cloud-init seed of this definition (seed-disk=$(gos_param seed-disk)) and no ext2/3/4 root on disk 0: nothing to rename"
  else
    gos_log "warning: no cloud-init seed of this definition in the root filesystem; only the guest's hostname files are renamed"
  fi
  gos_fault rename-write
  if [[ -n $seed_disk && -f $tmp/seed/meta-data ]]; then
    img_put_seed_disk "$seed_disk" "$(img_seed_volume_format "$seed_disk")" "$tmp/seed" "$tmp"
  fi
  if [[ $root_ext == yes ]]; then
    img_with_root "$disk" "$tmp" img_rename_root "$tmp/seed"
  fi
  if [[ $OLD_INSTANCE_NAME == "$INSTANCE_NAME" ]]; then
    gos_log "instance $INSTANCE_NAME: name unchanged (Ganeti runs rename after every import)"
  else
    gos_log "renamed $OLD_INSTANCE_NAME to $INSTANCE_NAME"
  fi
}

# --- verify ---------------------------------------------------------------------------------

gos_step_verify() {
  img_settings
  gos_check_params || gos_die "invalid OS parameters"
  local problem
  problem=$(img_variant_problem)
  [[ -z $problem ]] || gos_die "$problem"
  if [[ -f $CACHE_DIR/$SHA256.image && -f $CACHE_DIR/$SHA256.info ]]; then
    gos_log "parameters accepted; the image of variant '${GOS_VARIANT:-default}' is cached"
  elif img_source_reachable; then
    gos_log "parameters accepted; the image of variant '${GOS_VARIANT:-default}' is reachable at $IMAGE"
  else
    gos_die "the image of variant '${GOS_VARIANT:-default}' is neither in the cache ($CACHE_DIR) nor reachable at $IMAGE from this node"
  fi
}
