package up

import (
	"fmt"
	"io"
	"strings"

	"github.com/wgnet/wgnet/internal/trust"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// ReadKeyFile reads the private key a host keeps itself (intent.Host.KeyFile),
// as `wg set IFACE private-key FILE` would, but natively: the path is data and
// never reaches a shell, and a missing or bad key stops up before anything is
// touched instead of leaving an interface without a key. The file and the
// directories above it must be trusted (package trust); a symlink is refused.
func ReadKeyFile(path string) (wgkey.Private, error) {
	if err := trust.Path(path); err != nil {
		return wgkey.Private{}, err
	}
	f, err := trust.Open(path)
	if err != nil {
		return wgkey.Private{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return wgkey.Private{}, fmt.Errorf("%s: %w", path, err)
	}
	k, err := wgkey.ParsePrivate(strings.TrimSpace(string(b)))
	if err != nil {
		return wgkey.Private{}, fmt.Errorf("%s: not a WireGuard private key (base64 of 32 bytes, as `wg genkey` writes)", path)
	}
	return k, nil
}
