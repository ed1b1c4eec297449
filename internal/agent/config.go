package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/atomicfile"
	"github.com/wgnet/wgnet/internal/trust"
)

// Files in the agent's directory (0700), each 0600 and written atomically.
const (
	ConfigFile = "agent.json"  // who the agent is and where its controllers are
	StateFile  = "state.json"  // the last good desired state, applied
	KeyFile    = "private.key" // the host's private key, when the agent made it
	DefaultDir = "/var/lib/wgnet-agent"
)

// Config is what `wgnet agent join` stores: the host's identity in its
// network, its agent credential (a secret: 0600), and the controllers it
// knows. No private key: KeyFile names the file that holds it.
type Config struct {
	Network    string   `json:"network"`
	Host       string   `json:"host"`
	Credential string   `json:"credential"`
	URLs       []string `json:"urls"`
	CAHash     string   `json:"ca"`
	KeyFile    string   `json:"key_file"`
	// Interface overrides the interface name the controller gives ("": its).
	Interface string `json:"interface,omitempty"`
	// Allow are the settings the host's operator lets the controller set
	// (join --allow); the others are refused.
	Allow Allowed `json:"allow,omitempty"`
}

// Cache is the last good desired state the agent applied, with the revision
// it followed the change log to (at least the state's).
type Cache struct {
	State    api.AgentState `json:"state"`
	Followed uint64         `json:"followed"`
}

// ErrNotJoined is an agent directory without a config.
var ErrNotJoined = errors.New("not joined (run wgnet agent join first)")

// prepareDir makes dir 0700 (or checks it is trusted and not open to others).
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	return trust.Path(dir)
}

// writeJSON writes v to path (0600, atomically): indented for people to read,
// or compact for the state, which is rewritten at every change.
func writeJSON(path string, v any, indent bool) error {
	var b []byte
	var err error
	if indent {
		b, err = json.MarshalIndent(v, "", "  ")
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600, 0o700)
}

// readJSON reads a file the agent wrote, refusing one others could have changed.
func readJSON(path string, v any) error {
	if err := trust.Path(path); err != nil {
		return err
	}
	f, err := trust.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := json.NewDecoder(f).Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// LoadConfig reads the agent's config from dir.
func LoadConfig(dir string) (Config, error) {
	var c Config
	err := readJSON(filepath.Join(dir, ConfigFile), &c)
	if errors.Is(err, fs.ErrNotExist) {
		return c, fmt.Errorf("%s: %w", dir, ErrNotJoined)
	}
	return c, err
}
