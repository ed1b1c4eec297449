// Package vmtest verifies wgnet's kernel WireGuard backend for real, in a qemu
// virtual machine that boots Debian's kernel (which has the WireGuard module) from an
// initramfs built on the fly: static busybox, the module and its dependencies,
// iproute2's ip, and static test binaries. The VM has no network device at all.
//
// It owns the pieces that make and boot that VM: a newc cpio writer (Initramfs), the
// kernel and module lookup in an unpacked linux-image package (Kernel), the shared
// libraries of a host program (SharedLibs), the qemu run (Boot) and the reading of
// the VM's console (ParseConsole). Its tests are the two halves of the check:
// TestKernelVM on the host (opt-in, WGNET_QEMU_TEST=1) builds and boots the VM;
// inside it, the device package's TestKernelConformance and this package's
// TestGuestTwoHosts run. tests/qemu/run.sh does the same from the shell; see
// docs/kernel-vm.md.
//
// It is for tests only. It imports netnstest (in tests) and nothing else of wgnet;
// the binaries it boots are built from their packages, not linked in.
package vmtest
