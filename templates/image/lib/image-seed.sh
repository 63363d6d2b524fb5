# shellcheck shell=bash disable=SC2034
# The cloud-init NoCloud seed of the 'image' template: meta-data (instance-id, local-hostname,
# public-keys), network-config (version 2, matched by MAC, from Ganeti's NIC settings),
# user-data (the admin's file) and vendor-data (this definition's own settings), delivered
# into the image's ext2/3/4 root (/var/lib/cloud/seed/nocloud) or onto a disk the admin named
# (parameter seed-disk), formatted as a 'cidata' FAT or ISO volume.
# Sourced by lib/steps.sh.

IMG_SEED_FILES=(meta-data user-data vendor-data network-config)
IMG_SEED_DIR=var/lib/cloud/seed/nocloud
IMG_IMPORTED_MARK='# ganeti-os: imported'

# img_yq TEXT: TEXT as a single-quoted YAML scalar.
img_yq() {
  printf "'%s'" "${1//\'/\'\'}"
}

img_new_instance_id() {
  printf 'iid-%s' "$(cat /proc/sys/kernel/random/uuid)"
}

# img_write_meta_data FILE ID [MARK]: meta-data for INSTANCE_NAME with instance-id ID; MARK
# (a comment line) records that the disk came from an import.
img_write_meta_data() {
  local file=$1 id=$2 mark=${3-} keys k
  local -a list=()
  keys=$(gos_param ssh-authorized-keys)
  if [[ -n $keys ]]; then IFS='|' read -r -a list <<<"$keys"; fi
  {
    printf '# cloud-init NoCloud meta-data, written by the %s OS definition (Ganeti).\n' "$GOS_OS_NAME"
    if [[ -n $mark ]]; then printf '%s\n' "$mark"; fi
    printf 'instance-id: %s\n' "$(img_yq "$id")"
    printf 'local-hostname: %s\n' "$(img_yq "$INSTANCE_NAME")"
    if ((${#list[@]})); then
      printf 'public-keys:\n'
      for k in "${list[@]}"; do printf '  - %s\n' "$(img_yq "$k")"; done
    fi
  } >"$file"
}

# img_meta_value FILE KEY: a top-level scalar of meta-data we wrote.
img_meta_value() {
  sed -n "s/^$2: *'\\(.*\\)' *\$/\\1/p; s/^$2: *\\([^' ][^ ]*\\) *\$/\\1/p" -- "$1" | head -n 1 | sed "s/''/'/g"
}

# --- network-config -------------------------------------------------------------------------

# img_prefix CIDR DEFAULT: the prefix length of a subnet.
img_prefix() {
  if [[ $1 == */* ]]; then printf '%s' "${1#*/}"; else printf '%s' "$2"; fi
}

# img_link_setting LINK KEY: NETWORK_<LINK>_<KEY> from the configuration layers (LINK upper
# case, every character other than A-Z and 0-9 as '_': bridge xen-br0 is NETWORK_XEN_BR0_*;
# the same settings as the debian template's).
img_link_setting() {
  local name=${1^^}
  name=NETWORK_${name//[^A-Z0-9]/_}_$2
  printf '%s' "${!name-}"
}

# img_nic_address I: how NIC I is addressed, into NA_KIND (dhcp or static), NA_ADDR (ip/prefix),
# NA_GW (gateway, or empty) and NA_ONLINK (yes: the default route is on-link, through the node),
# NA_NOTE (said in the log). A Ganeti network's subnet and gateway come first, then the link's
# NETWORK_<LINK>_PREFIX/_GATEWAY (_PREFIX6/_GATEWAY6 for an IPv6 address); a routed NIC without
# either gets its address alone and an on-link default route; a bridged or Open vSwitch NIC
# without either gets DHCP.
img_nic_address() {
  local i=$1 ip mode link subnet gw full=32 six='' prefix gateway link_var
  ip=NIC_${i}_IP mode=NIC_${i}_MODE link=NIC_${i}_LINK
  ip=${!ip-} mode=${!mode:-bridged} link=${!link-}
  NA_KIND=dhcp NA_ADDR='' NA_GW='' NA_ONLINK=no NA_NOTE=''
  [[ $(gos_param network) == auto && -n $ip ]] || return 0
  if [[ $ip == *:* ]]; then
    full=128 six=6 subnet=NIC_${i}_NETWORK_SUBNET6 gw=NIC_${i}_NETWORK_GATEWAY6
  else
    subnet=NIC_${i}_NETWORK_SUBNET gw=NIC_${i}_NETWORK_GATEWAY
  fi
  subnet=${!subnet-} gw=${!gw-}
  prefix=$(img_link_setting "$link" "PREFIX$six") gateway=$(img_link_setting "$link" "GATEWAY$six")
  if [[ -n $subnet ]]; then prefix=$(img_prefix "$subnet" "$full") gateway=$gw; fi
  if [[ -z $subnet && -z $prefix && -z $gateway && $mode != routed ]]; then
    link_var=${link^^}
    NA_NOTE="NIC $i ($mode${link:+ on $link}) has the IP $ip but no Ganeti network and no NETWORK_${link_var//[^A-Z0-9]/_}_PREFIX$six/_GATEWAY$six in the configuration: it uses DHCP"
    return 0
  fi
  NA_KIND=static NA_ADDR=$ip/${prefix:-$full} NA_GW=$gateway
  # Routed: the node routes the instance's address to its interface and answers ARP for every
  # other one (proxy ARP), so the default route is on-link.
  if [[ $mode == routed ]]; then NA_ONLINK=yes; fi
}

# img_default_route_nic: the index of the NIC that gets the default route (empty: none): the
# parameter default-route-nic, else the setting DEFAULT_ROUTE_NIC (when that NIC has a gateway),
# else the first NIC with one.
img_default_route_nic() {
  local want i
  want=$(gos_param default-route-nic)
  if [[ $want == auto && -n ${DEFAULT_ROUTE_NIC-} ]]; then want=$DEFAULT_ROUTE_NIC; fi
  if [[ $want != auto ]]; then
    img_nic_address "$want"
    if [[ $NA_KIND == static && (-n $NA_GW || $NA_ONLINK == yes) ]]; then
      printf '%s' "$want"
      return 0
    fi
    gos_log "warning: NIC $want is to have the default route (default-route-nic, DEFAULT_ROUTE_NIC), but it has no static address with a gateway; using the first NIC that has one"
  fi
  for ((i = 0; i < ${NIC_COUNT:-0}; i++)); do
    img_nic_address "$i"
    if [[ $NA_KIND == static && (-n $NA_GW || $NA_ONLINK == yes) ]]; then
      printf '%s' "$i"
      return 0
    fi
  done
}

# img_write_network_config FILE: cloud-init network configuration version 2, one entry per NIC
# matched by its MAC address. Returns 1 (and writes nothing) when parameter network is none or
# the instance has no NIC.
img_write_network_config() {
  local file=$1 i mac id route domain ns
  local -a servers=()
  [[ $(gos_param network) != none ]] || return 1
  # No NIC with a MAC address: no configuration (an empty 'ethernets' is not valid for cloud-init).
  for ((i = 0; i < ${NIC_COUNT:-0}; i++)); do
    mac=NIC_${i}_MAC
    if [[ -n ${!mac-} ]]; then break; fi
  done
  ((i < ${NIC_COUNT:-0})) || return 1
  route=$(img_default_route_nic)
  mapfile -t servers < <(gos_nameservers)
  domain=${INSTANCE_NAME#*.}
  if [[ $domain == "$INSTANCE_NAME" ]]; then domain=''; fi
  {
    printf '# cloud-init network configuration, written by the %s OS definition from Ganeti'"'"'s NIC settings.\n' "$GOS_OS_NAME"
    printf 'version: 2\nethernets:\n'
    for ((i = 0; i < ${NIC_COUNT:-0}; i++)); do
      mac=NIC_${i}_MAC
      [[ -n ${!mac-} ]] || continue
      id=${INTERFACE_NAME_PREFIX:-nic}$i
      printf '  %s:\n    match:\n      macaddress: %s\n' "$id" "$(img_yq "${!mac,,}")"
      if [[ -n $INTERFACE_NAME_PREFIX ]]; then printf '    set-name: %s\n' "$id"; fi
      img_nic_address "$i"
      if [[ -n $NA_NOTE ]]; then gos_log "note: $NA_NOTE" >&2; fi
      if [[ $NA_KIND == dhcp ]]; then
        printf '    dhcp4: true\n'
        continue
      fi
      printf '    dhcp4: false\n    addresses:\n      - %s\n' "$(img_yq "$NA_ADDR")"
      if [[ $route == "$i" ]]; then
        local to=0.0.0.0/0
        if [[ $NA_ADDR == *:* ]]; then to=::/0; fi
        if [[ -n $NA_GW && $NA_ONLINK == no ]]; then
          # gateway4/6 rather than a route to 0.0.0.0/0: every cloud-init renderer (eni,
          # sysconfig, netplan, networkd) turns it into the interface's default gateway, where
          # eni renders routes with net-tools' route command, absent from most images.
          local gwkey=gateway4
          if [[ $NA_ADDR == *:* ]]; then gwkey=gateway6; fi
          printf '    %s: %s\n' "$gwkey" "$(img_yq "$NA_GW")"
        elif [[ -n $NA_GW ]]; then
          printf '    routes:\n      - to: %s\n        via: %s\n        on-link: true\n' "$(img_yq "$to")" "$(img_yq "$NA_GW")"
        elif [[ $NA_ONLINK == yes ]]; then
          printf '    routes:\n      - to: %s\n        scope: link\n' "$(img_yq "$to")"
        fi
      fi
      if ((${#servers[@]})); then
        printf '    nameservers:\n      addresses:\n'
        for ns in "${servers[@]}"; do printf '        - %s\n' "$(img_yq "$ns")"; done
        if [[ -n $domain ]]; then printf '      search:\n        - %s\n' "$(img_yq "$domain")"; fi
      fi
    done
  } >"$file"
}

# --- user-data and vendor-data --------------------------------------------------------------

# img_user_data_file: the admin's user-data file (parameter user-data, else USER_DATA), or empty.
img_user_data_file() {
  local given
  given=$(gos_param user-data)
  printf '%s' "${given:-$USER_DATA}"
}

img_write_user_data() {
  local file=$1 src
  src=$(img_user_data_file)
  if [[ -n $src ]]; then
    [[ -f $src && -r $src ]] || gos_die "the user-data file $src (parameter user-data or USER_DATA of variant '${GOS_VARIANT:-default}') cannot be read on this node"
    cp -- "$src" "$file" || gos_die "could not copy the user-data file $src"
  else
    printf '#cloud-config\n{}\n' >"$file"
  fi
}

# img_write_vendor_data FILE: this definition's own cloud-config (user-data overrides it).
img_write_vendor_data() {
  {
    printf '#cloud-config\n# Written by the %s OS definition; the instance'"'"'s user-data overrides it.\n' "$GOS_OS_NAME"
    if [[ $(gos_param grow-root) == no ]]; then
      printf 'growpart:\n  mode: "off"\nresize_rootfs: false\n'
    else
      printf '{}\n'
    fi
  } >"$1"
}

# img_make_seed DIR ID [MARK]: every seed file for INSTANCE_NAME into DIR.
img_make_seed() {
  local dir=$1 id=$2 mark=${3-}
  mkdir -p -- "$dir"
  img_write_meta_data "$dir/meta-data" "$id" "$mark"
  img_write_user_data "$dir/user-data"
  img_write_vendor_data "$dir/vendor-data"
  img_write_network_config "$dir/network-config" || rm -f -- "$dir/network-config"
}

# --- delivery -------------------------------------------------------------------------------

# img_guest_dir ROOT REL: mkdir -p REL under a mounted guest ROOT, refusing to follow any
# symbolic link the guest put on the way (it would lead out of the guest, onto the node).
img_guest_dir() {
  local root=$1 rel=$2 path=$1 part
  local -a parts
  IFS=/ read -r -a parts <<<"$rel"
  for part in "${parts[@]}"; do
    [[ -n $part ]] || continue
    path=$path/$part
    [[ ! -L $path ]] || gos_die "the guest's /${path#"$root"/} is a symbolic link: not writing through it"
    if [[ ! -d $path ]]; then
      mkdir -m 0755 -- "$path" || gos_die "could not create /${path#"$root"/} in the guest"
    fi
  done
}

# img_put_seed_root ROOT SEED: the seed files into the mounted guest root (old ones replaced).
img_put_seed_root() {
  local root=$1 seed=$2 f dest
  img_guest_dir "$root" "$IMG_SEED_DIR"
  for f in "${IMG_SEED_FILES[@]}"; do
    dest=$root/$IMG_SEED_DIR/$f
    rm -f -- "$dest"
    if [[ -f $seed/$f ]]; then
      install -m 0600 -o 0 -g 0 -- "$seed/$f" "$dest" || gos_die "could not write /$IMG_SEED_DIR/$f in the guest"
    fi
  done
}

# img_seed_disk_path: the path of the disk named by parameter seed-disk (empty for root).
img_seed_disk_path() {
  local n var
  n=$(gos_param seed-disk)
  [[ $n != root ]] || return 0
  var=DISK_${n}_PATH
  ((n < ${DISK_COUNT:-0})) || gos_die "parameter seed-disk is $n but the instance has only ${DISK_COUNT:-0} disk(s): add a small disk for the seed, or use seed-disk=root with an ext2/3/4 root"
  [[ -n ${!var-} ]] || gos_die "parameter seed-disk is $n but disk $n has no DISK_${n}_PATH"
  printf '%s' "${!var}"
}

# img_put_seed_disk DISK FORMAT SEED TMP: format DISK as a 'cidata' volume holding the seed.
img_put_seed_disk() {
  local disk=$1 format=$2 seed=$3 tmp=$4 f size iso
  local -a files=()
  for f in "${IMG_SEED_FILES[@]}"; do
    if [[ -f $seed/$f ]]; then files+=("$seed/$f"); fi
  done
  size=$(gos_disk_size "$disk")
  wipefs --all --force --quiet -- "$disk" >/dev/null 2>&1 || gos_die "could not clear old signatures on the seed disk $disk"
  case $format in
    vfat)
      command -v mcopy >/dev/null || gos_die "seed-format vfat needs mtools (apt-get install mtools)"
      mkfs.vfat -n CIDATA -- "$disk" >/dev/null || gos_die "could not format the seed disk $disk (mkfs.vfat)"
      ((size == $(gos_disk_size "$disk"))) || gos_die "bug: mkfs.vfat changed the size of $disk"
      mcopy -o -i "$disk" -- "${files[@]}" :: || gos_die "could not copy the seed onto $disk (mcopy)"
      ;;
    iso)
      command -v xorriso >/dev/null || gos_die "seed-format iso needs xorriso (apt-get install xorriso)"
      iso=$tmp/seed.iso
      xorriso -as genisoimage -quiet -output "$iso" -volid cidata -joliet -rock "${files[@]}" 2>/dev/null ||
        gos_die "could not build the seed ISO (xorriso)"
      (($(stat -c %s -- "$iso") <= size)) || gos_die "the seed disk $disk ($size bytes) is smaller than the seed volume"
      dd if="$iso" of="$disk" bs=64k conv=notrunc,fsync status=none || gos_die "could not write the seed volume onto $disk"
      ;;
    *) gos_die "unknown seed-format '$format'" ;;
  esac
}

# img_get_seed_disk DISK DIR: the seed files of a 'cidata' volume into DIR (fails when DISK is none).
img_get_seed_disk() {
  local disk=$1 dir=$2 type f
  type=$(blkid -p -o value -s TYPE -- "$disk" 2>/dev/null || true)
  mkdir -p -- "$dir"
  case $type in
    vfat)
      for f in "${IMG_SEED_FILES[@]}"; do mcopy -n -i "$disk" -- "::$f" "$dir/$f" 2>/dev/null || true; done
      ;;
    iso9660)
      xorriso -osirrox on -indev "$disk" -extract / "$dir" >/dev/null 2>&1 || return 1
      chmod -R u+w -- "$dir"
      ;;
    *) return 1 ;;
  esac
  [[ -f $dir/meta-data ]]
}
