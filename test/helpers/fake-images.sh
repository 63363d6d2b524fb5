#!/usr/bin/env bash
# Recipes of the small fake cloud images the image template's tests install (each built in
# well under a second; no image file is committed). The root filesystems hold just what the
# tests look at: /etc/hostname, /etc/hosts, a cloud-init cache entry, a marker file.
#
# usage: fake-images.sh KIND OUT
#   gpt-ubuntu  GPT, 48 MiB: 14 = BIOS boot, 15 = ESP (vfat), 1 = ext4 root last (Debian/Ubuntu layout)
#   gpt-root3   GPT, 40 MiB: 1 = BIOS boot, 2 = ESP (vfat), 3 = ext4 root (root not on partition 1)
#   msdos       msdos, 24 MiB: 1 = ext4 root from 1 MiB
#   xfs-root    GPT, 340 MiB: 1 = BIOS boot, 2 = ext4 /boot, 3 = xfs root (Rocky layout)
#   no-linux    GPT, 16 MiB: 1 = ESP (vfat) only
# OUT is a raw image; the tests convert it (qemu-img, xz, zstd) as they need.
set -euo pipefail
kind=$1 out=$2
PATH=/usr/sbin:/usr/bin:/sbin:/bin
tree=$(mktemp -d "${TMPDIR:-/tmp}/gos-fake-tree.XXXXXX")
trap 'rm -rf -- "$tree"' EXIT

LINUX=0FC63DAF-8483-4772-8E79-3D69D8477DE4
BIOS=21686148-6449-6E6F-744E-656564454649
ESP=C12A7328-F81F-11D2-BA4B-00A0C93EC93B

root_tree() {
  mkdir -p "$tree/etc" "$tree/var/lib/cloud/instances/iid-old" "$tree/boot"
  printf 'localhost\n' >"$tree/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tlocalhost\n' >"$tree/etc/hosts"
  printf 'pickled\n' >"$tree/var/lib/cloud/instances/iid-old/obj.pkl"
  printf '%s\n' "$kind" >"$tree/etc/fake-image"
}

# ext4 FILE START_SECTOR SECTORS
ext4_at() {
  mke2fs -q -F -t ext4 -L root -d "$tree" -E offset=$(($2 * 512)) "$1" "$(($3 / 2))k"
}

vfat_at() {
  mkfs.vfat -n ESP --offset "$2" "$1" $(($3 / 2)) >/dev/null 2>&1
}

rm -f -- "$out"
case $kind in
  gpt-ubuntu)
    truncate -s 48M "$out"
    root_tree
    printf 'label: gpt\n14 : start=2048, size=2048, type=%s\n15 : start=4096, size=16384, type=%s\n1 : start=20480, size=75776, type=%s\n' \
      "$BIOS" "$ESP" "$LINUX" | sfdisk --quiet --no-reread --no-tell-kernel "$out" >/dev/null
    vfat_at "$out" 4096 16384
    ext4_at "$out" 20480 75776
    ;;
  gpt-root3)
    truncate -s 40M "$out"
    root_tree
    printf 'label: gpt\n1 : start=2048, size=2048, type=%s\n2 : start=4096, size=8192, type=%s\n3 : start=12288, size=65536, type=%s\n' \
      "$BIOS" "$ESP" "$LINUX" | sfdisk --quiet --no-reread --no-tell-kernel "$out" >/dev/null
    vfat_at "$out" 4096 8192
    ext4_at "$out" 12288 65536
    ;;
  msdos)
    truncate -s 24M "$out"
    root_tree
    printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk --quiet --no-reread --no-tell-kernel "$out" >/dev/null
    ext4_at "$out" 2048 $((24 * 2048 - 2048))
    ;;
  xfs-root)
    truncate -s 340M "$out"
    mkdir -p "$tree/grub"
    printf 'label: gpt\n1 : start=2048, size=2048, type=%s\n2 : start=4096, size=32768, type=%s\n3 : start=36864, size=655360, type=%s\n' \
      "$BIOS" "$LINUX" "$LINUX" | sfdisk --quiet --no-reread --no-tell-kernel "$out" >/dev/null
    ext4_at "$out" 4096 32768
    # mkfs.xfs writes no offset: make it aside and copy it in (sparse both ways).
    truncate -s $((655360 * 512)) "$out.xfs"
    mkfs.xfs -q -f -K -L root "$out.xfs"
    dd if="$out.xfs" of="$out" bs=1M seek=18 conv=notrunc,sparse status=none
    rm -f -- "$out.xfs"
    ;;
  no-linux)
    truncate -s 16M "$out"
    printf 'label: gpt\n1 : start=2048, size=16384, type=%s\n' "$ESP" | sfdisk --quiet --no-reread --no-tell-kernel "$out" >/dev/null
    vfat_at "$out" 2048 16384
    ;;
  *)
    echo "unknown kind $kind" >&2
    exit 2
    ;;
esac
