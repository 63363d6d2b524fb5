#!/bin/sh
# Installed by the 'debian' template into each instance as /usr/local/lib/ganeti-os/grow-root,
# run early at every boot by ganeti-os-grow-root.service: when the disk under the root
# filesystem has grown (gnt-instance grow-disk, or an import into a larger disk), partition 1
# (the root partition, last on the disk in every layout create writes) is extended to the end of
# the disk and the filesystem grown into it, online. Needs nothing beyond the base system:
# sfdisk (fdisk), partx and findmnt (util-linux), resize2fs (e2fsprogs). Does nothing when there
# is less than 1 MiB to gain, or when partition 1 is not the last on the disk.
set -eu
say() { echo "ganeti-os-grow-root: $*"; }

root=$(findmnt -n -o SOURCE -- /) || exit 0
root=$(readlink -f -- "$root")
name=${root##*/}
sys=/sys/class/block/$name
[ -e "$sys" ] || { say "root $root is not a block device; nothing to grow"; exit 0; }
fstype=$(findmnt -n -o FSTYPE -- /)
case $fstype in
  ext2 | ext3 | ext4) ;;
  *) say "root filesystem is $fstype, not ext2/3/4; not grown"; exit 0 ;;
esac

if [ -e "$sys/partition" ]; then
  nr=$(cat "$sys/partition")
  disk=/dev/$(basename "$(readlink -f "$sys/..")")
  if [ "$nr" != 1 ]; then say "root is partition $nr, not 1; not grown"; exit 0; fi
  disk_sectors=$(cat "/sys/class/block/${disk##*/}/size")
  start=$(cat "$sys/start")
  sectors=$(cat "$sys/size")
  end=$((start + sectors))
  # Another partition after partition 1: it cannot grow (nor is it a layout this template wrote).
  for p in /sys/class/block/"${disk##*/}"/"${disk##*/}"*; do
    if [ ! -e "$p/start" ] || [ "${p##*/}" = "$name" ]; then continue; fi
    if [ "$(cat "$p/start")" -ge "$end" ]; then say "partition ${p##*/} lies after the root partition; not grown"; exit 0; fi
  done
  # A GPT keeps a backup header in the last 33 sectors of the disk.
  label=$(sfdisk --quiet --dump -- "$disk" 2>/dev/null | sed -n 's/^label: //p')
  reserve=0
  [ "$label" != gpt ] || reserve=34
  if [ $((disk_sectors - reserve - end)) -ge 2048 ]; then
    say "growing partition 1 of $disk ($((sectors / 2048)) MiB) to the end of the disk ($((disk_sectors / 2048)) MiB)"
    # The backup GPT header moves to the disk's new end first.
    [ "$label" != gpt ] || sfdisk --quiet --no-reread --no-tell-kernel --relocate gpt-bak-std -- "$disk"
    echo ', +' | sfdisk --quiet --no-reread --no-tell-kernel -N 1 -- "$disk"
    # The kernel's idea of the partition, while it is mounted (BLKPG resize).
    partx --update --nr 1 -- "$disk"
  fi
fi

super=$(dumpe2fs -h -- "$root" 2>/dev/null) || { say "cannot read the superblock of $root"; exit 1; }
fs_bytes=$(( $(printf '%s\n' "$super" | sed -n 's/^Block count: *//p') * $(printf '%s\n' "$super" | sed -n 's/^Block size: *//p') ))
dev_bytes=$(( $(cat "$sys/size") * 512 ))
if [ $((dev_bytes - fs_bytes)) -ge 1048576 ]; then
  say "growing the $fstype filesystem on $root from $((fs_bytes / 1048576)) MiB to $((dev_bytes / 1048576)) MiB"
  resize2fs -- "$root" >/dev/null 2>&1 || { say "resize2fs $root failed"; exit 1; }
fi
exit 0
