package agent_test

import (
	"github.com/wgnet/wgnet/internal/store"
	"os"

	"github.com/wgnet/wgnet/internal/wgkey"
)

func writeKey(path string, k wgkey.Private) error {
	return os.WriteFile(path, []byte(k.Base64()+"\n"), 0o600)
}

func storeHost(name string, k wgkey.Key, endpoint string) store.Host {
	return store.Host{Name: name, PublicKey: k, Endpoint: endpoint}
}
