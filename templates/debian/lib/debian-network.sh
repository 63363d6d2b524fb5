# shellcheck shell=bash
# The network of instances of the 'debian' template: one systemd-networkd file per Ganeti NIC,
# matched by MAC address. Ganeti passes a NIC's mode (bridged, routed, openvswitch), link and IP,
# and the subnets and gateways of its Ganeti network (gnt-network) when it has one. Every NIC
# with an address ends with a default route:
#   - a Ganeti network's gateway, else the link's NETWORK_<LINK>_GATEWAY from the configuration;
#   - routed NICs without one: an on-link default route (the node routes the instance's address
#     to its interface and answers ARP for every other one: Ganeti's net-common, proxy_arp);
#   - bridged and Open vSwitch NICs with neither a Ganeti network nor NETWORK_<LINK>_* settings:
#     DHCP (network=auto), said in the log, rather than an address without any route.
# One NIC's default routes are preferred (metric 100; DEFAULT_ROUTE_NIC, else the first NIC that
# has one); the others' are fallbacks (metric 1000 + NIC index). Sourced by lib/steps.sh.

DEB_METRIC_PRIMARY=100
DEB_METRIC_OTHERS=1000

# The plan, per NIC index, made by deb_plan_network: kind (static, dhcp or none), addresses,
# default gateways (an address, 'onlink', or empty), whether a default route exists, notes.
declare -a DEB_NIC_KIND=() DEB_NIC_ADDR=() DEB_NIC_GW4=() DEB_NIC_GW6=() DEB_NIC_RA=() DEB_NIC_DEFAULT=() DEB_NIC_NOTE=()
DEB_PRIMARY_NIC=''

# deb_link_setting LINK KEY: NETWORK_<LINK>_<KEY> from the configuration layers (LINK upper
# case, every character other than A-Z and 0-9 as '_': bridge xen-br0 is NETWORK_XEN_BR0_*).
deb_link_setting() {
  local name
  name=NETWORK_$(deb_link_var "$1")_$2
  printf '%s' "${!name-}"
}

# deb_link_var LINK: LINK as it appears in NETWORK_<LINK>_* setting names.
deb_link_var() {
  local name=${1^^}
  printf '%s' "${name//[^A-Z0-9]/_}"
}

# deb_is_ipv4 ADDR / deb_is_ipv6 ADDR: the address's form (not its range).
deb_is_ipv4() {
  [[ $1 =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]
}
deb_is_ipv6() {
  [[ $1 == *:* && $1 =~ ^[0-9a-fA-F:.]+$ ]]
}

# deb_check_prefix VALUE MAX WHAT: VALUE must be a prefix length 0..MAX (empty is fine).
deb_check_prefix() {
  [[ -z $1 ]] && return 0
  if ! [[ $1 =~ ^[0-9]+$ ]] || (($1 > $2)); then gos_die "$3 must be a prefix length from 0 to $2, not '$1'"; fi
}

# deb_check_network_settings: the NETWORK_* and DEFAULT_ROUTE_NIC settings have their forms.
deb_check_network_settings() {
  local var
  for var in $(compgen -v NETWORK_); do
    case $var in
      *_PREFIX) deb_check_prefix "${!var}" 32 "$var" ;;
      *_PREFIX6) deb_check_prefix "${!var}" 128 "$var" ;;
      *_GATEWAY) [[ -z ${!var} ]] || deb_is_ipv4 "${!var}" || gos_die "$var must be an IPv4 address, not '${!var}'" ;;
      *_GATEWAY6) [[ -z ${!var} ]] || deb_is_ipv6 "${!var}" || gos_die "$var must be an IPv6 address, not '${!var}'" ;;
    esac
  done
  [[ -z ${DEFAULT_ROUTE_NIC-} || $DEFAULT_ROUTE_NIC =~ ^[0-9]+$ ]] ||
    gos_die "DEFAULT_ROUTE_NIC must be a NIC index (0, 1, ...), not '$DEFAULT_ROUTE_NIC'"
}

# deb_plan_nic I: decide how NIC I is configured (one entry of the DEB_NIC_* arrays).
deb_plan_nic() {
  local i=$1 v ip mode link subnet gw subnet6 gw6 netname prefix gateway fam max what six=''
  v=NIC_${i}_IP ip=${!v-}
  v=NIC_${i}_MODE mode=${!v:-bridged}
  v=NIC_${i}_LINK link=${!v-}
  v=NIC_${i}_NETWORK_NAME netname=${!v-}
  v=NIC_${i}_NETWORK_SUBNET subnet=${!v-}
  v=NIC_${i}_NETWORK_GATEWAY gw=${!v-}
  v=NIC_${i}_NETWORK_SUBNET6 subnet6=${!v-}
  v=NIC_${i}_NETWORK_GATEWAY6 gw6=${!v-}
  what="NIC $i ($mode${link:+ on $link})"
  DEB_NIC_ADDR[i]='' DEB_NIC_GW4[i]='' DEB_NIC_GW6[i]='' DEB_NIC_RA[i]=no DEB_NIC_DEFAULT[i]=no DEB_NIC_NOTE[i]=''
  case $(gos_param network) in
    none) DEB_NIC_KIND[i]=none; return 0 ;;
    dhcp) ip='' ;;
  esac
  if [[ -z $ip ]]; then
    DEB_NIC_KIND[i]=dhcp DEB_NIC_DEFAULT[i]=yes
    DEB_NIC_NOTE[i]="$what: DHCP"
    return 0
  fi
  # The address's family decides which of the network's data apply to it.
  if deb_is_ipv6 "$ip"; then
    fam=6 max=128 six=6
    subnet=$subnet6 gw=$gw6
    prefix=$(deb_link_setting "$link" PREFIX6) gateway=$(deb_link_setting "$link" GATEWAY6)
  else
    fam=4 max=32
    prefix=$(deb_link_setting "$link" PREFIX) gateway=$(deb_link_setting "$link" GATEWAY)
  fi
  if [[ $mode != routed && -z $subnet && -z $prefix && -z $gateway && $(gos_param network) == auto ]]; then
    # An address alone tells neither the subnet nor the router: a /32 without a route would
    # leave the instance unreachable beyond the node.
    DEB_NIC_KIND[i]=dhcp DEB_NIC_DEFAULT[i]=yes
    DEB_NIC_NOTE[i]="$what: has the IP $ip but no Ganeti network and no NETWORK_$(deb_link_var "$link")_PREFIX$six/_GATEWAY$six in the configuration, so it uses DHCP; set those (or connect the NIC to a Ganeti network with a subnet and gateway) to give it $ip statically"
    return 0
  fi
  DEB_NIC_KIND[i]=static
  if [[ -n $subnet ]]; then prefix=${subnet#*/}; fi
  [[ -n $prefix ]] || prefix=$max
  DEB_NIC_ADDR[i]=$ip/$prefix
  if [[ -n $gw ]]; then gateway=$gw; fi
  if [[ -z $gateway && $mode == routed ]]; then gateway=onlink; fi
  if [[ $fam == 4 ]]; then DEB_NIC_GW4[i]=$gateway; else DEB_NIC_GW6[i]=$gateway; fi
  # An IPv4 NIC of a network with an IPv6 subnet: router advertisements give it an address, and
  # the network's IPv6 gateway (else the link's setting) a default route.
  if [[ $fam == 4 ]]; then
    if [[ -n $subnet6 ]]; then DEB_NIC_RA[i]=yes; fi
    DEB_NIC_GW6[i]=${gw6:-$(deb_link_setting "$link" GATEWAY6)}
    if [[ -n ${DEB_NIC_GW6[i]} ]]; then DEB_NIC_RA[i]=yes; fi
  fi
  DEB_NIC_NOTE[i]="$what: static ${DEB_NIC_ADDR[i]}${netname:+ (Ganeti network $netname)}"
  if [[ -n $gateway ]]; then
    DEB_NIC_DEFAULT[i]=yes
    if [[ $gateway == onlink ]]; then
      DEB_NIC_NOTE[i]+=", default route on-link through the node"
    else
      DEB_NIC_NOTE[i]+=", default route via $gateway"
    fi
  else
    DEB_NIC_NOTE[i]+=", no default route through it (${netname:+Ganeti network $netname has no gateway and }no NETWORK_$(deb_link_var "$link")_GATEWAY$six in the configuration)"
  fi
  if [[ -n ${DEB_NIC_GW6[i]} && $fam == 4 ]]; then
    DEB_NIC_DEFAULT[i]=yes
    DEB_NIC_NOTE[i]+=", IPv6 default route via ${DEB_NIC_GW6[i]}"
  fi
}

# deb_plan_network: plan every NIC and choose the one whose default routes are preferred.
deb_plan_network() {
  local i
  deb_check_network_settings
  DEB_NIC_KIND=() DEB_PRIMARY_NIC=''
  for ((i = 0; i < ${NIC_COUNT:-0}; i++)); do
    deb_plan_nic "$i"
  done
  if [[ -n ${DEFAULT_ROUTE_NIC-} ]]; then
    if [[ ${DEB_NIC_DEFAULT[DEFAULT_ROUTE_NIC]-} == yes ]]; then
      DEB_PRIMARY_NIC=$DEFAULT_ROUTE_NIC
    else
      gos_log "warning: DEFAULT_ROUTE_NIC is $DEFAULT_ROUTE_NIC, but the instance has no NIC $DEFAULT_ROUTE_NIC with a default route; using the first NIC that has one"
    fi
  fi
  if [[ -z $DEB_PRIMARY_NIC ]]; then
    for ((i = 0; i < ${NIC_COUNT:-0}; i++)); do
      if [[ ${DEB_NIC_DEFAULT[i]} == yes ]]; then
        DEB_PRIMARY_NIC=$i
        break
      fi
    done
  fi
}

# deb_nic_is_static I: does NIC I get a static address (after deb_plan_network)?
deb_nic_is_static() {
  [[ ${DEB_NIC_KIND[$1]-} == static ]]
}

# deb_route GATEWAY FAMILY METRIC: a [Route] section for a default route.
deb_route() {
  local gw=$1 fam=$2 metric=$3
  printf '\n[Route]\n'
  if [[ $gw == onlink ]]; then
    if [[ $fam == 4 ]]; then printf 'Destination=0.0.0.0/0\n'; else printf 'Destination=::/0\n'; fi
    printf 'Scope=link\n'
  else
    # On-link: the gateway may lie outside the address's prefix (a /32, a routed NIC).
    printf 'Gateway=%s\nGatewayOnLink=yes\n' "$gw"
  fi
  printf 'Metric=%s\n' "$metric"
}

# deb_write_network ROOT: the systemd-networkd files of the plan (deb_plan_network runs first),
# one per NIC with a MAC,
# each matched by MAC address so that the guest's interface names do not matter. The plan of
# every NIC is logged.
deb_write_network() {
  local root=$1 dir i mac file ns domain metric
  dir=$root/etc/systemd/network
  mkdir -p -- "$dir"
  rm -f -- "$dir"/10-ganeti-nic*.network
  if [[ $(gos_param network) == none ]]; then
    gos_log "network=none: no network configuration written"
    return 0
  fi
  domain=${INSTANCE_NAME#*.}
  if [[ $domain == "$INSTANCE_NAME" ]]; then domain=''; fi
  for ((i = 0; i < ${NIC_COUNT:-0}; i++)); do
    mac=NIC_${i}_MAC
    [[ -n ${!mac-} ]] || continue
    if [[ $i == "$DEB_PRIMARY_NIC" ]]; then metric=$DEB_METRIC_PRIMARY; else metric=$((DEB_METRIC_OTHERS + i)); fi
    if [[ ${DEB_NIC_DEFAULT[i]} == yes && $i == "$DEB_PRIMARY_NIC" ]]; then
      gos_log "${DEB_NIC_NOTE[i]} (the preferred default route)"
    else
      gos_log "${DEB_NIC_NOTE[i]}"
    fi
    file=$dir/10-ganeti-nic$i.network
    {
      printf '# Written by the %s OS definition from Ganeti NIC %s; rename rewrites it.\n' "$GOS_OS_NAME" "$i"
      printf '[Match]\nMACAddress=%s\n\n[Network]\n' "${!mac}"
      case ${DEB_NIC_KIND[i]} in
        static)
          printf 'Address=%s\n' "${DEB_NIC_ADDR[i]}"
          if [[ ${DEB_NIC_RA[i]} == yes ]]; then printf 'IPv6AcceptRA=yes\n'; fi
          while IFS= read -r ns; do
            if [[ -n $ns ]]; then printf 'DNS=%s\n' "$ns"; fi
          done < <(gos_nameservers)
          if [[ -n $domain ]]; then printf 'Domains=%s\n' "$domain"; fi
          if [[ -n ${DEB_NIC_GW4[i]} ]]; then deb_route "${DEB_NIC_GW4[i]}" 4 "$metric"; fi
          if [[ -n ${DEB_NIC_GW6[i]} ]]; then deb_route "${DEB_NIC_GW6[i]}" 6 "$metric"; fi
          if [[ ${DEB_NIC_RA[i]} == yes ]]; then printf '\n[IPv6AcceptRA]\nRouteMetric=%s\n' "$metric"; fi
          ;;
        dhcp)
          printf 'DHCP=yes\n\n[DHCPv4]\nRouteMetric=%s\n\n[IPv6AcceptRA]\nRouteMetric=%s\n' "$metric" "$metric"
          ;;
      esac
    } >"$file"
  done
}

# deb_host_address: the address /etc/hosts gives the instance's name (NIC 0's static one).
deb_host_address() {
  if ((${NIC_COUNT:-0} > 0)) && deb_nic_is_static 0; then
    printf '%s' "${DEB_NIC_ADDR[0]%/*}"
  else
    printf '127.0.1.1'
  fi
}

# deb_write_resolv_conf ROOT: an /etc/resolv.conf for a system that has none of its own (no
# systemd-resolved, whose stub is a symlink): the name servers of gos_nameservers and the
# instance's domain. Nothing is written when there is no name server to name.
deb_write_resolv_conf() {
  local root=$1 domain ns list
  [[ -e $root/etc/resolv.conf || -L $root/etc/resolv.conf ]] && return 0
  list=$(gos_nameservers)
  [[ -n $list ]] || return 0
  domain=${INSTANCE_NAME#*.}
  {
    printf '# Written by the %s OS definition.\n' "$GOS_OS_NAME"
    if [[ $domain != "$INSTANCE_NAME" ]]; then printf 'search %s\n' "$domain"; fi
    while IFS= read -r ns; do printf 'nameserver %s\n' "$ns"; done <<<"$list"
  } >"$root/etc/resolv.conf"
}
