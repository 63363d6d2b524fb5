#!/usr/bin/env bash
# Recipe of the bootable Debian cloud images the image template's end-to-end tests install:
# a release (bookworm unless SUITE is given, e.g. trixie) from the node's own apt mirror
# (mmdebstrap), cloud-init (NoCloud only), cloud-guest-utils (growpart), ifupdown, the cloud
# kernel, and one disk that boots under BIOS and UEFI alike, as Debian's genericcloud images
# do: the debian template's gpt layout with an EFI system partition (deb_partition ... esp),
# written without partition devices or mounts. Partition 1 = ext4 root from 34 MiB (last, so
# growpart can grow it), 2 = BIOS boot at 1-2 MiB holding GRUB's core image (deb_install_grub),
# 3 = EFI system partition at 2-34 MiB: FAT (mkfs.vfat, filled with mtools) holding Debian's
# signed shim at the removable-media path /EFI/BOOT/BOOTX64.EFI with the signed GRUB beside it
# (deb_install_efi), so no NVRAM entry is needed. Console on ttyS0. Written as qcow2 to OUT.
#
# usage: cloud-image.sh OUT.qcow2 REPO_DIR [SUITE]
# test/helpers/images.ts hashes this file to key its cache: change the recipe, get a new image.
set -euo pipefail
out=$1 repo=$2 suite=${3:-bookworm}
PATH=/usr/sbin:/usr/bin:/sbin:/bin

# The debian template's helpers: the node's mirror, its gpt layout, GRUB for BIOS and the EFI
# system partition, all without partition devices or mounts.
gos_die() { printf 'cloud-image: %s\n' "$*" >&2; exit 1; }
gos_debug() { :; }
gos_push_cleanup() { :; }
gos_mktemp_dir() { printf -v "$1" '%s' "$(mktemp -d "$work/tmp.XXXXXX")"; }
# shellcheck disable=SC2034 # read by debian-system.sh
DEB_APT_ETC=/etc/apt
# shellcheck source=/dev/null
. "$repo/templates/debian/lib/debian-disk.sh"
# shellcheck source=/dev/null
. "$repo/templates/debian/lib/debian-system.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/gos-cloud-image.XXXXXX")
cleanup() { rm -rf --one-file-system -- "$work"; }
trap cleanup EXIT

mirror=$(deb_node_mirror) || gos_die "no Debian mirror in this node's apt sources"
root=$work/root
# shellcheck disable=SC2016 # "$1" is the hook's, expanded when mmdebstrap runs it
mmdebstrap --quiet --variant=apt --components=main \
  --include=linux-image-cloud-amd64,grub-pc-bin,grub-efi-amd64-bin,grub-efi-amd64-signed,shim-signed,cloud-init,cloud-guest-utils,ifupdown,isc-dhcp-client,systemd-sysv,udev,netbase,iproute2,openssh-server,e2fsprogs \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  "$suite" "$root" "$mirror" >&2

uuid=$(cat /proc/sys/kernel/random/uuid)
version=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -n 1)
[[ -n $version ]] || gos_die "no kernel installed"
printf 'UUID=%s\t/\text4\terrors=remount-ro\t0\t1\n' "$uuid" >"$root/etc/fstab"
printf 'localhost\n' >"$root/etc/hostname"
: >"$root/etc/machine-id"
mkdir -p "$root/etc/cloud/cloud.cfg.d" "$root/boot/grub"
# NoCloud only; C.UTF-8 needs no locales package (cloud-init's default en_US.UTF-8 does).
printf 'datasource_list: [ NoCloud, None ]\nlocale: C.UTF-8\n' >"$root/etc/cloud/cloud.cfg.d/90-ganeti-os-test.cfg"
cat >"$root/boot/grub/grub.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
insmod part_gpt
insmod ext2
search --no-floppy --fs-uuid --set=root $uuid
menuentry 'Debian $suite cloud test image' {
	linux /boot/vmlinuz-$version root=UUID=$uuid ro console=ttyS0,115200n8
	initrd /boot/initrd.img-$version
}
EOF
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_Packages

# Root size: the tree plus a quarter (the template grows it to the instance's disk); the root
# partition starts at 34 MiB, after the BIOS boot and EFI system partitions, and ends 33 sectors
# before the image does (the GPT backup).
kib=$(du -sk --apparent-size "$root" | cut -f1)
root_mib=$(((kib * 5 / 4) / 1024 + 64))
raw=$work/disk.raw
truncate -s $(((root_mib + 35) * 1048576)) "$raw"
deb_partition "$raw" gpt esp
deb_locate_root "$raw"
[[ -n $DEB_ESP_OFFSET ]] || gos_die "no EFI system partition in the layout"
deb_install_grub "$raw" gpt "$root"
deb_install_efi "$raw" "$root" "$uuid"
mke2fs -q -F -t ext4 -U "$uuid" -L root -d "$root" -E offset="$DEB_ROOT_OFFSET" "$raw" "$((DEB_ROOT_SIZE / 1024))k"
qemu-img convert -f raw -O qcow2 "$raw" "$out.tmp"
mv -f "$out.tmp" "$out"
