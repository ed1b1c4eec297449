package device

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// CreateKernel creates the kernel WireGuard interface name (the kernel loads the
// module on demand) and returns a handle on it. It returns an error wrapping
// ErrNoKernelSupport when the kernel has no WireGuard module.
//
// The machines wgnet is developed on have no module; it is verified in a qemu VM
// booting Debian's kernel (internal/vmtest, docs/kernel-vm.md).
func CreateKernel(name string) (Device, error) {
	la := netlink.NewLinkAttrs()
	la.Name = name
	if err := netlink.LinkAdd(&netlink.Wireguard{LinkAttrs: la}); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EAFNOSUPPORT) {
			return nil, fmt.Errorf("create %s: %w", name, ErrNoKernelSupport)
		}
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	d, err := Open(name)
	if err != nil {
		_ = DeleteKernel(name)
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	return d, nil
}

// DeleteKernel removes the kernel WireGuard interface name. A missing interface is
// not an error.
func DeleteKernel(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", name, err)
	}
	if l.Type() != "wireguard" {
		return fmt.Errorf("delete %s: is a %s interface, not wireguard", name, l.Type())
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// isKernelLink reports whether this network namespace has a kernel WireGuard
// link called name (or could not tell: then the caller asks the kernel too).
func isKernelLink(name string) bool {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		return !errors.As(err, &nf)
	}
	return l.Type() == "wireguard"
}
