#!/bin/bash
# run.sh: verify wgnet's kernel WireGuard backend in a qemu VM that boots Debian's
# kernel, from the shell. It does what `WGNET_QEMU_TEST=1 go test ./internal/vmtest`
# does (docs/kernel-vm.md), step by step, and leaves everything in a work directory:
#
#   1. tests/qemu/fetch.sh: qemu, and Debian's kernel and busybox-static unpacked
#      into the cache (nothing installed into the host's /boot);
#   2. static builds: internal/device's and internal/vmtest's test binaries, wgnet;
#   3. an initramfs: busybox, internal/vmtest/testdata/init as /init, the wireguard,
#      veth and nf_tables modules with their dependencies (found with modinfo), the
#      host's iproute2 ip and wg with their libraries, the three binaries;
#   4. qemu with no network device, the console on stdout, bounded to 180 s: KVM
#      when it can run a stock kernel, else TCG emulation.
#
# Usage (as root, from anywhere in the repository):
#   tests/qemu/run.sh [WORKDIR]         # WORKDIR defaults to a new /tmp/wgnet-vm.XXXXXX
# Environment: WGNET_QEMU_CACHE (default /var/cache/wgnet-qemu),
#   WGNET_QEMU_ACCEL=kvm|tcg to force the accelerator.
# Exit status: 0 when every run in the VM passed, 1 when one failed, 2 when the VM
# could not be built or did not finish.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${WGNET_QEMU_CACHE:-/var/cache/wgnet-qemu}
work=${1:-$(mktemp -d /tmp/wgnet-vm.XXXXXX)}
mkdir -p "$work"
say() { echo "run.sh: $*" >&2; }
die() { say "$*"; exit 2; }

# 1. Kernel, busybox, qemu.
"$repo/tests/qemu/fetch.sh" || die "fetch.sh failed"
kimage=$(ls "$cache"/root/boot/vmlinuz-* | head -n1)
kver=${kimage##*/vmlinuz-}
moddir=$cache/root/lib/modules/$kver
command -v modinfo >/dev/null || die "needs kmod's modinfo"
command -v ip >/dev/null || die "needs iproute2's ip (it is copied into the VM)"

# 2. Static binaries.
say "building into $work/bin"
mkdir -p "$work/bin"
(
	cd "$repo"
	export CGO_ENABLED=0
	go test -c -o "$work/bin/device.test" ./internal/device
	go test -c -o "$work/bin/vmtest.test" ./internal/vmtest
	go build -o "$work/bin/wgnet" ./cmd/wgnet
) || die "build failed"

# 3. The initramfs, staged in $work/root.
root=$work/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,etc/wgnet-vm,proc,sys,dev,tmp,run,root,var,usr/local/bin}
install -m 0755 "$repo/internal/vmtest/testdata/init" "$root/init"
install -m 0755 "$cache/root/bin/busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# Modules in load order, dependencies first, from each module's "depends=".
declare -A modpath seen
while read -r p; do
	n=${p##*/}
	n=${n%.ko}
	modpath[${n//-/_}]=${p#"$moddir"/}
done < <(find "$moddir" -name '*.ko')
order=()
visit() {
	local n=${1//-/_} d
	[[ -n ${seen[$n]:-} ]] && return
	seen[$n]=1
	[[ -n ${modpath[$n]:-} ]] || die "module $n not in $moddir"
	for d in $(modinfo -F depends "$moddir/${modpath[$n]}" | tr , ' '); do
		visit "$d"
	done
	order+=("${modpath[$n]}")
}
# crc32c_generic: libcrc32c's soft dependency (nf_tables needs libcrc32c).
for m in wireguard veth crc32c_generic nf_tables; do visit "$m"; done
: >"$root/etc/wgnet-vm/modules"
for m in "${order[@]}"; do
	install -D -m 0644 "$moddir/$m" "$root/lib/modules/$kver/$m"
	echo "$m" >>"$root/etc/wgnet-vm/modules"
done

# iproute2's ip (and wg, when there) with the libraries ldd lists.
for prog in ip wg; do
	p=$(command -v "$prog") || continue
	install -m 0755 "$p" "$root/usr/local/bin/$prog"
	for lib in $(ldd "$p" | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
		install -D -m 0755 "$lib" "$root$lib"
	done
done
install -m 0755 "$work"/bin/{device.test,vmtest.test,wgnet} "$root/usr/local/bin/"

(cd "$root" && find . -mindepth 1 | sort | "$cache/root/bin/busybox" cpio -o -H newc) >"$work/initramfs.cpio" 2>/dev/null ||
	die "cpio failed"
say "initramfs: $(du -h "$work/initramfs.cpio" | cut -f1), modules: ${order[*]##*/}"

# 4. Boot.
accel=${WGNET_QEMU_ACCEL:-}
if [[ -z $accel ]]; then
	accel=tcg
	if [[ -r /dev/kvm && -w /dev/kvm && ! -e /sys/module/kvm_pvm ]]; then
		accel=kvm
	fi
fi
case $accel in
kvm) accel_args=(-enable-kvm -cpu host) ;;
tcg) accel_args=(-accel tcg -cpu max) ;;
*) die "WGNET_QEMU_ACCEL=$accel: want kvm or tcg" ;;
esac
say "booting $kver with $accel (console in $work/console.log)"
start=$(date +%s)
set +e
timeout 180 qemu-system-x86_64 -nodefaults -no-user-config -display none -serial stdio \
	-nic none -no-reboot -m 1024 -smp 2 \
	-kernel "$kimage" -initrd "$work/initramfs.cpio" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1 random.trust_cpu=on" \
	"${accel_args[@]}" </dev/null | tee "$work/console.log"
qrc=${PIPESTATUS[0]}
set -e
say "qemu exited $qrc after $(($(date +%s) - start)) s"

tr -d '\r' <"$work/console.log" >"$work/console.txt"
done_line=$(grep -m1 '^WGNET-VM-DONE rc=' "$work/console.txt" || true)
[[ -n $done_line ]] || die "the VM did not finish (qemu exit $qrc); see $work/console.log"
grep '^WGNET-VM-END ' "$work/console.txt" >&2
if [[ $done_line == "WGNET-VM-DONE rc=0" ]] &&
	grep -q '^WGNET-VM-END device-conformance rc=0$' "$work/console.txt" &&
	grep -q '^WGNET-VM-END two-hosts rc=0$' "$work/console.txt" &&
	! grep -q -- '--- SKIP: TestKernelConformance' "$work/console.txt"; then
	say "PASS: the kernel backend passed in the VM"
	exit 0
fi
say "FAIL: see $work/console.log"
exit 1
