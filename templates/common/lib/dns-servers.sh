# shellcheck shell=bash
# The OS parameter dns-servers, for every template that writes static addresses (debian, image):
# its check and the name servers it means. Sourced by a template's lib/steps.sh; needs
# lib/runtime.sh.

# gos_check_dns_servers VALUE: is every word of VALUE an IPv4 or IPv6 address? Logs why not.
gos_check_dns_servers() {
  local s
  for s in $1; do
    [[ $s =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ || $s == *:* ]] || {
      gos_log "invalid value '$1' for parameter dns-servers: '$s' is not an IP address"
      return 1
    }
  done
}

# gos_nameservers: the name servers for static addresses, one per line: the parameter's, else
# this node's own (/etc/resolv.conf, less loopback resolvers, which mean nothing in an instance).
gos_nameservers() {
  local given
  given=$(gos_param dns-servers)
  if [[ -n $given ]]; then
    local -a list
    read -r -a list <<<"$given"
    printf '%s\n' "${list[@]}"
  elif [[ -f /etc/resolv.conf ]]; then
    awk '$1 == "nameserver" && $2 !~ /^127\./ && $2 != "::1" { print $2 }' /etc/resolv.conf
  fi
}
