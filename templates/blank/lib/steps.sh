# shellcheck shell=bash
# Steps of the 'blank' template: a definition that installs nothing. create checks and logs what
# Ganeti passed; export and import copy disks raw; rename and verify do their interface duty.
# Sourced by lib/runtime.sh, which provides the gos_* helpers.

gos_step_create() {
  local i var
  gos_log "instance $INSTANCE_NAME (OS ${INSTANCE_OS:-$GOS_OS_NAME}, hypervisor $HYPERVISOR)${INSTANCE_REINSTALL:+, reinstall}"
  for ((i = 0; i < DISK_COUNT; i++)); do
    var=DISK_${i}_PATH
    if [[ -z ${!var-} ]]; then
      var=DISK_${i}_URI
      [[ -n ${!var-} ]] || gos_die "disk $i has neither DISK_${i}_PATH nor DISK_${i}_URI"
    fi
    var=DISK_${i}_SIZE
    gos_log "disk $i: $(gos_env_or DISK_${i}_PATH DISK_${i}_URI) (${!var-?} MiB, $(gos_env_or DISK_${i}_ACCESS) access)"
  done
  for ((i = 0; i < ${NIC_COUNT:-0}; i++)); do
    gos_log "nic $i: mac $(gos_env_or NIC_${i}_MAC), mode $(gos_env_or NIC_${i}_MODE), ip $(gos_env_or NIC_${i}_IP)"
  done
  gos_log "the blank template installs nothing; the disks were left as they are"
}

# gos_env_or VAR...: the value of the first set variable, else '-'.
gos_env_or() {
  local var
  for var in "$@"; do
    if [[ -n ${!var-} ]]; then
      printf '%s' "${!var}"
      return 0
    fi
  done
  printf -- '-'
}

gos_step_export() {
  local size
  size=$(gos_disk_size "$EXPORT_DEVICE")
  gos_announce_size "$size"
  gos_debug "exporting disk $EXPORT_INDEX ($EXPORT_DEVICE, $size bytes)"
  dd if="$EXPORT_DEVICE" bs=1M status=none
}

gos_step_import() {
  local size extra
  size=$(gos_disk_size "$IMPORT_DEVICE")
  gos_debug "importing disk $IMPORT_INDEX into $IMPORT_DEVICE ($size bytes)"
  # Read exactly as many bytes as the disk holds; never truncate a file-backed disk.
  dd of="$IMPORT_DEVICE" bs=1M iflag=fullblock,count_bytes count="$size" conv=notrunc,fsync status=none
  extra=$(head -c 1 | wc -c)
  if ((extra > 0)); then
    gos_die "the stream is larger than disk $IMPORT_INDEX ($IMPORT_DEVICE, $size bytes): use a disk at least as large as the exported one"
  fi
}

gos_step_rename() {
  if [[ $OLD_INSTANCE_NAME == "$INSTANCE_NAME" ]]; then
    gos_log "instance $INSTANCE_NAME: name unchanged (Ganeti runs rename after every import)"
  else
    gos_log "instance $OLD_INSTANCE_NAME is now $INSTANCE_NAME; the blank template keeps no name on disk"
  fi
}
