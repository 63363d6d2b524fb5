#!/bin/bash
# The 'verify' script of a Ganeti OS definition (interface version 20). Written by
# `ganeti-os bump-api 20` for a definition ganeti-os did not write: it checks no parameter.
# Ganeti runs it as `verify parameters` with each OS parameter in an OSP_<NAME> variable;
# print why a value is wrong and exit non-zero to refuse it, e.g.:
#   case ${OSP_FILESYSTEM-} in ""|ext4|xfs) ;; *) echo "invalid filesystem '$OSP_FILESYSTEM'" >&2; exit 1 ;; esac
set -euo pipefail

usage() {
  cat <<USAGE
Usage: verify parameters
       verify --help

Check OS parameters (OSP_* variables) before Ganeti accepts them.
USAGE
}

if [[ ${1-} == -h || ${1-} == --help ]]; then
  usage
  exit 0
fi
if (($# == 0)); then
  usage >&2
  exit 2
fi
for check in "$@"; do
  if [[ $check != parameters ]]; then
    usage >&2
    echo "verify: unknown check '$check' (the interface defines only 'parameters')" >&2
    exit 2
  fi
done
exit 0
