package spec

import "path"

// DefaultKeyDir is where a host that keeps its own private key has it by default.
const DefaultKeyDir = "/etc/wireguard"

// PrivateKeyFileOf returns the path of h's private key on h when h keeps its own
// key: private_key_file, else /etc/wireguard/IFACE.key.
func (s *Spec) PrivateKeyFileOf(h *Host) string {
	if h.PrivateKeyFile != "" {
		return h.PrivateKeyFile
	}
	return path.Join(DefaultKeyDir, s.InterfaceName()+".key")
}
