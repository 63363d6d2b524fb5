# shellcheck shell=bash
# Instance names as a guest's hostname files hold them, for every template that writes them
# (debian, image). Sourced by a template's lib/steps.sh.

# gos_short_name NAME: the host part of a name (all before the first dot).
gos_short_name() {
  printf '%s' "${1%%.*}"
}
