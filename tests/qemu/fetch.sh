#!/bin/sh
# fetch.sh: get what the kernel-backend VM test needs (docs/kernel-vm.md), as root:
#   - qemu-system-x86 (installed with apt-get when qemu-system-x86_64 is missing);
#   - Debian's current kernel (the image linux-image-amd64 depends on) and
#     busybox-static, downloaded with `apt-get download` and unpacked with
#     `dpkg-deb -x` into the cache directory. They are not installed: the host's
#     /boot, modules and busybox stay as they are.
# The cache is $WGNET_QEMU_CACHE, default /var/cache/wgnet-qemu; it holds debs/ and
# root/ (the unpacked packages). Running it again does nothing once root/ is there;
# remove the cache to fetch a newer kernel.
set -eu

cache=${WGNET_QEMU_CACHE:-/var/cache/wgnet-qemu}

if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
	echo "fetch.sh: installing qemu-system-x86" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-system-x86 >&2
fi

if ls "$cache"/root/boot/vmlinuz-* >/dev/null 2>&1 && [ -x "$cache/root/bin/busybox" ]; then
	echo "fetch.sh: $(basename "$cache"/root/boot/vmlinuz-*) and busybox already in $cache/root" >&2
	exit 0
fi

image=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
if [ -z "$image" ]; then
	echo "fetch.sh: apt-cache knows no linux-image-amd64; run apt-get update first" >&2
	exit 1
fi

mkdir -p "$cache/debs"
rm -rf "$cache/root.new"
mkdir -p "$cache/root.new"
# apt-get download runs as root here: the _apt sandbox user may not write the cache.
(cd "$cache/debs" && apt-get download -q -o APT::Sandbox::User=root "$image" busybox-static >&2)
for deb in "$cache"/debs/"$image"_*.deb "$cache"/debs/busybox-static_*.deb; do
	dpkg-deb -x "$deb" "$cache/root.new"
done
rm -rf "$cache/root"
mv "$cache/root.new" "$cache/root"
echo "fetch.sh: unpacked $image and busybox-static into $cache/root" >&2
