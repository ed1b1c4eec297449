package netnstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// IptablesLegacyFirst puts iptables-legacy's programs first in the test's
// PATH under the plain names (iptables, iptables-restore, iptables-save and
// their IPv6 twins): Debian's iptables is iptables-nft, and a host without
// nf_tables has legacy. It checks that iptables-save is then the legacy one.
// The test needs the programs (NeedsTool "iptables-legacy" ...) first.
func IptablesLegacyFirst(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"iptables", "ip6tables", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save"} {
		legacy, err := exec.LookPath(strings.Replace(p, "tables", "tables-legacy", 1))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(legacy, filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(filepath.ListSeparator)+os.Getenv("PATH"))
	if out, err := exec.Command("iptables-save", "--version").CombinedOutput(); err != nil || strings.Contains(string(out), "nf_tables") {
		t.Fatalf("iptables-save is not the legacy one: %v: %s", err, out)
	}
}
