package wgconf

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// quickView is what wg-quick's parse_options makes of a file's wg-quick keys.
// Addresses are as Parse would write them: 10.0.0.2/32 for wg-quick's
// "10.0.0.2" (ip address add reads it so).
type quickView struct {
	Addresses           []string
	MTU, Table          string
	Nameservers, Search []string
	PreUp, PostUp       []string
	PreDown, PostDown   []string
	SaveConfig          string
}

// wgQuickScript runs the installed wg-quick's own parse_options (and the
// helpers it calls) on the file in $2 and prints its variables, NUL-separated.
const wgQuickScript = `
set -e -o pipefail
shopt -s extglob
export LC_ALL=C
eval "$(sed -n '/^die() {/,/^}/p; /^parse_options() {/,/^}/p; /^read_bool() {/,/^}/p' "$1")"
WG_CONFIG="" INTERFACE="" ADDRESSES=( ) MTU="" DNS=( ) DNS_SEARCH=( ) TABLE=""
PRE_UP=( ) POST_UP=( ) PRE_DOWN=( ) POST_DOWN=( ) SAVE_CONFIG=0 PROGRAM=wg-quick
parse_options "$2"
for v in "${ADDRESSES[@]}"; do printf 'Address=%s\0' "$v"; done
printf 'MTU=%s\0' "$MTU"
printf 'Table=%s\0' "$TABLE"
for v in "${DNS[@]}"; do printf 'DNS=%s\0' "$v"; done
for v in "${DNS_SEARCH[@]}"; do printf 'Search=%s\0' "$v"; done
for v in "${PRE_UP[@]}"; do printf 'PreUp=%s\0' "$v"; done
for v in "${POST_UP[@]}"; do printf 'PostUp=%s\0' "$v"; done
for v in "${PRE_DOWN[@]}"; do printf 'PreDown=%s\0' "$v"; done
for v in "${POST_DOWN[@]}"; do printf 'PostDown=%s\0' "$v"; done
printf 'SaveConfig=%s\0' "$SAVE_CONFIG"
`

// parseOptions runs wg-quick's parse_options on src; ok is false when it dies.
func parseOptions(t *testing.T, wgQuick, dir string, src []byte) (v quickView, ok bool, stderr string) {
	t.Helper()
	path := filepath.Join(dir, "wgq.conf")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", "-c", wgQuickScript, "wgq", wgQuick, path)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return v, false, strings.TrimSpace(errb.String())
	}
	lists := map[string]*[]string{
		"Address": &v.Addresses, "DNS": &v.Nameservers, "Search": &v.Search,
		"PreUp": &v.PreUp, "PostUp": &v.PostUp, "PreDown": &v.PreDown, "PostDown": &v.PostDown,
	}
	single := map[string]*string{"MTU": &v.MTU, "Table": &v.Table, "SaveConfig": &v.SaveConfig}
	for _, field := range strings.Split(strings.TrimSuffix(out.String(), "\x00"), "\x00") {
		key, val, _ := strings.Cut(field, "=")
		if p, msg := parsePrefix(val); key == "Address" && msg == "" {
			val = p.String()
		}
		switch {
		case strings.HasPrefix(key, "P") && val == "":
			// an empty hook: wg-quick evals "", which does nothing
		case lists[key] != nil:
			*lists[key] = append(*lists[key], val)
		case single[key] != nil:
			*single[key] = val
		default:
			t.Fatalf("unexpected output field %q", field)
		}
	}
	return v, true, ""
}

// wgQuickNameserver is wg-quick's test of a DNS entry: a nameserver, or else a
// search domain.
var wgQuickNameserver = regexp.MustCompile(`(^[0-9.]+$)|(^.*:.*$)`)

// quickViewOf is what Parse says wg-quick reads from the file.
func quickViewOf(c *Config) quickView {
	ic := &c.Interface
	v := quickView{Table: ic.Table, PreUp: ic.PreUp, PostUp: ic.PostUp, PreDown: ic.PreDown, PostDown: ic.PostDown, SaveConfig: "0"}
	for _, a := range ic.Addresses {
		v.Addresses = append(v.Addresses, a.String())
	}
	if ic.MTU != 0 {
		v.MTU = strconv.Itoa(ic.MTU)
	}
	for _, d := range ic.DNS {
		if wgQuickNameserver.MatchString(d) {
			v.Nameservers = append(v.Nameservers, d)
		} else {
			v.Search = append(v.Search, d)
		}
	}
	if ic.SaveConfig {
		v.SaveConfig = "1"
	}
	return v
}

// TestQuickKeysAgreeWithWgQuick runs the installed wg-quick's own parser
// (parse_options, taken out of /usr/bin/wg-quick) on every file of the
// agreement corpus and on the wg-quick cases below, and checks that Parse reads
// the wg-quick keys as wg-quick does: empty values as unset, a hook cut at "#",
// a second [Interface] merged, SaveConfig's verdict. Where wg-quick dies, Parse
// fails; where Parse accepts a file, its wg-quick keys are exactly wg-quick's
// (an Address without a prefix is /32 or /128 in both).
func TestQuickKeysAgreeWithWgQuick(t *testing.T) {
	wgQuick, err := exec.LookPath("wg-quick")
	if err != nil {
		t.Skipf("needs wg-quick (package wireguard-tools): %v", err)
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skipf("needs bash: %v", err)
	}
	cases := map[string]string{
		"wg-easy server": "[Interface]\nPrivateKey = " + testPriv + "\nAddress = 10.8.0.1/24\nListenPort = 51820\nPreUp = \nPostUp = iptables -t nat -A POSTROUTING -s 10.8.0.0/24 -o eth0 -j MASQUERADE; iptables -A INPUT -p udp -m udp --dport 51820 -j ACCEPT;\nPreDown = \nPostDown = iptables -t nat -D POSTROUTING -s 10.8.0.0/24 -o eth0 -j MASQUERADE;\n",
		"empty values":   "[Interface]\nMTU =\nDNS =\nTable =\nAddress =\nAddress = ,\nPreUp =\nPostUp = # only a comment\nPreDown=\nPostDown =\n",
		"empty resets":   "[Interface]\nMTU = 1400\nMTU =\nTable = 1234\nTable =\n",
		"hook cut at #":  "[Interface]\nPostUp = echo \"a # b\" > /tmp/x\nPostDown = iptables -D FORWARD -i %i -j ACCEPT # undo\nPreUp=x#y\n",
		"second iface":   "[Interface]\nAddress = 10.0.0.1/24\nPostUp = one\n[Peer]\nPublicKey = " + testPub2 + "\n[Interface]\nAddress = 10.0.0.2\nPostUp = two\nMTU = 1380\n",
		"table name":     "[Interface]\nTable = vpn\n",
		"dns and search": "[Interface]\nDNS = 10.0.0.53, fd00::53 corp.example,lan\n",
		"empty saveconf": "[Interface]\nSaveConfig =\n",
		"saveconf case":  "[Interface]\nSaveConfig = TRUE\n",
		"crlf":           "[Interface]\r\nMTU = 1400\r\nPostUp = a b \r\n",
	}
	type input struct{ name, src string }
	var inputs []input
	for name, src := range cases {
		inputs = append(inputs, input{name, src})
	}
	for _, path := range corpus(t) {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, input{filepath.Base(path), string(src)})
	}
	dir := t.TempDir()
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			want, ok, stderr := parseOptions(t, wgQuick, dir, []byte(in.src))
			cfg, perr := Parse("wgq.conf", []byte(in.src))
			switch {
			case !ok && perr == nil:
				t.Fatalf("wg-quick's parser dies (%s) but Parse accepts the file", stderr)
			case !ok || perr != nil:
				return // the wg part is TestAgreementWithWg's
			}
			got := quickViewOf(cfg)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("wg-quick keys differ from wg-quick's parse_options (-wg-quick +Parse):\n%s", diff)
			}
		})
	}
}
