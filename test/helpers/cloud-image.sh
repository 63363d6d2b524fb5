#!/usr/bin/env bash
# Recipe of the bootable Debian cloud image the image template's end-to-end test installs:
# bookworm from the node's own apt mirror (mmdebstrap), cloud-init (NoCloud only),
# cloud-guest-utils, ifupdown, the cloud kernel, GRUB for BIOS written without partition
# devices (the debian template's deb_install_grub). GPT: partition 1 = ext4 root from 2 MiB,
# partition 2 = BIOS boot at 1-2 MiB. Console on ttyS0. Written as qcow2 to OUT.
#
# usage: cloud-image.sh OUT.qcow2 REPO_DIR
# test/helpers/images.ts hashes this file to key its cache: change the recipe, get a new image.
set -euo pipefail
out=$1 repo=$2
PATH=/usr/sbin:/usr/bin:/sbin:/bin

# The debian template's helpers: the node's mirror and GRUB without partition devices.
gos_die() { printf 'cloud-image: %s\n' "$*" >&2; exit 1; }
gos_debug() { :; }
gos_push_cleanup() { :; }
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
mmdebstrap --quiet --variant=apt --components=main \
  --include=linux-image-cloud-amd64,grub-pc-bin,cloud-init,cloud-guest-utils,ifupdown,isc-dhcp-client,systemd-sysv,udev,netbase,iproute2,openssh-server,e2fsprogs \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  bookworm "$root" "$mirror" >&2

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
menuentry 'Debian cloud test image' {
	linux /boot/vmlinuz-$version root=UUID=$uuid ro console=ttyS0,115200n8
	initrd /boot/initrd.img-$version
}
EOF
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_Packages

# Root size: the tree plus a quarter (the template grows it to the instance's disk).
kib=$(du -sk --apparent-size "$root" | cut -f1)
root_mib=$(((kib * 5 / 4) / 1024 + 64))
raw=$work/disk.raw
truncate -s $(((root_mib + 3) * 1048576)) "$raw"
printf 'label: gpt\n1 : start=4096, size=%s, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root\n2 : start=2048, size=2048, type=%s, name=bios-boot\n' \
  $((root_mib * 2048)) "$DEB_BIOS_BOOT_TYPE" | sfdisk --quiet --no-reread --no-tell-kernel "$raw" >/dev/null
deb_install_grub "$raw" gpt "$root"
mke2fs -q -F -t ext4 -U "$uuid" -L root -d "$root" -E offset=$((4096 * 512)) "$raw" "$((root_mib * 1024))k"
qemu-img convert -f raw -O qcow2 "$raw" "$out.tmp"
mv -f "$out.tmp" "$out"
