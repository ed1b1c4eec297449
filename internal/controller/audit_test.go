package controller_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/controller"
	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/store/sqlitestore"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// TestAuditAndStatus: every change through the API is in the audit log with
// the admin token's ID (never the token) or the join token's, and status
// shows hosts that never reported honestly, then what a batch of reports said.
func TestAuditAndStatus(t *testing.T) {
	f := start(t)
	c := f.client(t)
	ctx := context.Background()
	if _, err := c.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "mesh", Subnets: []string{"10.0.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	_, k1 := pub(t)
	_, k2 := pub(t)
	if _, err := c.AddHost(ctx, "n", api.Host{Name: "a", PublicKey: k1, Endpoint: "192.0.2.1:51820"}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateToken(ctx, "n", api.CreateToken{Routes: []string{"172.20.0.0/16"}})
	if err != nil || tok.ID == "" || len(tok.URLs) != 1 || tok.CAHash == "" {
		t.Fatalf("CreateToken = %+v, %v", tok, err)
	}
	if _, err := client.Enroll(ctx, tok.Token, api.Host{Name: "b", PublicKey: k2, Keepalive: 25, Routes: []string{"172.20.1.0/24"}}); err != nil {
		t.Fatal(err)
	}
	a, err := c.Audit(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	admin := "admin " + store.HashToken(f.token).ID()
	join := "join token " + tok.ID
	type row struct{ Actor, Action, Subject string }
	var got []row
	for _, e := range a.Entries {
		got = append(got, row{e.Actor, e.Action, e.Subject})
		if strings.Contains(e.Actor+e.Subject, f.token) {
			t.Errorf("the audit log holds the admin token: %+v", e)
		}
	}
	want := []row{
		{"controller (first start)", "token-created", "admin " + store.HashToken(f.token).ID()},
		{admin, "network-created", "n"},
		{admin, "host-added", "a"},
		{admin, "token-created", "enroll " + tok.ID},
		{join, "host-added", "b"},
		{join, "host-enrolled", "b (join token " + tok.ID + ")"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}

	st, err := c.Status(ctx, "n")
	if err != nil || len(st.Hosts) != 2 || st.Revision != 3 {
		t.Fatalf("status = %+v, %v", st, err)
	}
	if st.Hosts[0].LastSeen != "" || st.Hosts[0].Revision != 0 || len(st.Hosts[0].Addresses) != 1 || st.Hosts[0].Endpoint != "192.0.2.1:51820" {
		t.Errorf("a host that never reported: %+v", st.Hosts[0])
	}
	if len(st.Hosts[1].Notes) != 1 || !strings.Contains(st.Hosts[1].Notes[0], "peers only with the 1 hosts that have one") {
		t.Errorf("b (mesh, no endpoint) notes = %q", st.Hosts[1].Notes)
	}
	now := time.Now().UTC()
	k1k, err := wgkey.ParseKey(k1)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.st.ReportStatus(ctx, []store.StatusReport{{Network: "n", Status: store.HostStatus{Host: "b", Time: now, Revision: 2,
		Peers: []store.PeerStatus{{PublicKey: k1k, Endpoint: "192.0.2.1:51820", LastHandshake: now}}}}}); err != nil || n != 1 {
		t.Fatalf("ReportStatus = %d, %v", n, err)
	}
	st, err = c.Status(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	b := st.Hosts[1]
	if b.LastSeen == "" || b.Revision != 2 || len(b.Peers) != 1 || b.Peers[0].Host != "a" || b.Peers[0].LastHandshake == "" {
		t.Errorf("b after its report: %+v", b)
	}
}

// TestJoinTokenErrors: an expired token, a used token and a wrong CA hash
// each say so.
func TestJoinTokenErrors(t *testing.T) {
	f := start(t)
	c := f.client(t)
	ctx := context.Background()
	if _, err := c.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "hub", Subnets: []string{"10.0.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateToken(ctx, "n", api.CreateToken{Uses: 1})
	if err != nil {
		t.Fatal(err)
	}
	jt, _ := api.ParseJoinToken(tok.Token)
	// An expired token: one stored with its expiry passed.
	expired := api.JoinToken{URLs: jt.URLs, CAHash: jt.CAHash, Secret: "expired-secret"}
	if err := f.st.CreateToken(ctx, store.Token{Hash: store.HashToken(expired.Secret), Kind: store.EnrollToken, Network: "n", Uses: 1, Expires: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	wrongCA := jt
	wrongCA.CAHash = "sha256:" + strings.Repeat("ab", 32)
	_, k1 := pub(t)
	_, k2 := pub(t)
	if _, err := client.Enroll(ctx, tok.Token, api.Host{Name: "a", PublicKey: k1}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token string
		status      int
		want        string
	}{
		{"expired", expired.String(), 410, `^controller: enroll: join token tok-[0-9a-f]{12}: token expired at \S+: ask an admin for a new one \(wgnet token create --ttl D\) \(HTTP 410\)$`},
		{"used", tok.Token, 409, `^controller: enroll: join token ` + tok.ID + `: token already used \(all its uses are spent\): ask an admin for a new one \(wgnet token create --uses N\) \(HTTP 409\)$`},
		{"wrong CA hash", wrongCA.String(), 0, `^connect to 127\.0\.0\.1:\d+: wrong CA hash: the controller's CA is not sha256:(ab){32} \(a token or --ca-hash for another controller, or the controller's CA changed\)$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Enroll(ctx, tc.token, api.Host{Name: "b", PublicKey: k2})
			if status(err) != tc.status {
				t.Errorf("status %d (%v), want %d", status(err), err, tc.status)
			}
			if err == nil || !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Errorf("error %q, want it to match %s", err, tc.want)
			}
			if tc.status == 0 && !errors.Is(err, client.ErrWrongCA) {
				t.Errorf("error %v is not client.ErrWrongCA", err)
			}
		})
	}
	// An admin client with a wrong --ca-hash hears the same.
	bad, err := client.New(client.Options{URL: f.url, Token: f.token, CAHash: wrongCA.CAHash})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := bad.Networks(ctx); !errors.Is(err, client.ErrWrongCA) {
		t.Errorf("admin client, wrong CA hash: %v", err)
	}
}

// TestOperatorTLS: --tls-cert/--tls-key serve with the operator's
// certificate; the pin printed and put in tokens is its chain's CA.
func TestOperatorTLS(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "operator CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "ctl"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, _ := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	kDER, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), caPEM...)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, chain, 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kDER}), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := sqlitestore.Open(ctx, filepath.Join(dir, "wgnet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- controller.Run(ctx, st, controller.Options{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), TLSCert: certFile, TLSKey: keyFile, Stdout: out})
	}()
	var url, token, pin string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && url == ""; time.Sleep(20 * time.Millisecond) {
		for _, l := range strings.Split(out.String(), "\n") {
			f := strings.Fields(l)
			switch {
			case len(f) == 1 && strings.HasPrefix(f[0], "wgnet-admin-"):
				token = f[0]
			case len(f) == 3 && f[0] == "ca":
				pin = f[1]
			case len(f) == 2 && f[0] == "listening":
				url = f[1]
			}
		}
	}
	if url == "" {
		t.Fatalf("controller did not start: %s", out)
	}
	if pin != api.CAHash(ca) {
		t.Errorf("printed pin %s, want the operator CA's %s", pin, api.CAHash(ca))
	}
	if _, err := os.Stat(filepath.Join(dir, "data", controller.CAKeyFile)); err == nil {
		t.Error("made a CA of its own although --tls-cert was given")
	}
	c, err := client.New(client.Options{URL: url, Token: token, CAPEM: caPEM})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "mesh", Subnets: []string{"10.0.0.0/24"}}); err != nil {
		t.Fatalf("client trusting the operator's CA: %v", err)
	}
	tok, err := c.CreateToken(ctx, "n", api.CreateToken{})
	if err != nil || tok.CAHash != api.CAHash(ca) {
		t.Fatalf("token = %+v, %v", tok, err)
	}
	_, k := pub(t)
	if _, err := client.Enroll(ctx, tok.Token, api.Host{Name: "a", PublicKey: k}); err != nil {
		t.Errorf("enroll by the token's pin of the operator's CA: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
