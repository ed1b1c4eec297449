package controller

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/wgnet/wgnet/internal/atomicfile"
)

// Files of the controller's CA in its data directory. The serving key is made
// at each start and kept in memory only.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// TLS is the controller's identity: its CA and a serving certificate signed by it.
type TLS struct {
	CA     *x509.Certificate
	CAPEM  []byte
	Config *tls.Config
}

// LoadTLS loads the CA from dir, making one (ECDSA P-256, ten years) on first
// start, and issues a serving certificate (one year) for names: host names or
// IP addresses.
func LoadTLS(dir string, names []string, now time.Time) (*TLS, error) {
	ca, caKey, caPEM, err := loadCA(dir)
	if errors.Is(err, fs.ErrNotExist) {
		ca, caKey, caPEM, err = newCA(dir, now)
	}
	if err != nil {
		return nil, fmt.Errorf("controller CA in %s: %w", dir, err)
	}
	return issue(ca, caKey, caPEM, names, now)
}

// issue makes a serving certificate for names, signed by the CA.
func issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, caPEM []byte, names []string, now time.Time) (*TLS, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "wgnet controller"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if a, err := netip.ParseAddr(n); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(a.AsSlice()))
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der, ca.Raw}, PrivateKey: key}
	return &TLS{CA: ca, CAPEM: caPEM, Config: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}, nil
}

// LoadOperatorTLS serves with the operator's certificate (--tls-cert, a PEM
// chain, leaf first, and --tls-key) instead of the controller's own CA. The pin
// that join tokens carry is the last certificate of the chain: its issuing CA
// when the file holds the chain, else the leaf itself (which then changes at
// each renewal with a new key).
func LoadOperatorTLS(certFile, keyFile string) (*TLS, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	last, err := x509.ParseCertificate(pair.Certificate[len(pair.Certificate)-1])
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s: %w", certFile, err)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	return &TLS{CA: last, CAPEM: certPEM, Config: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}, nil
}

// ServingNames returns the names a serving certificate needs: the hosts of the
// advertised URLs, the listen address's host when it is a specific one, and
// localhost.
func ServingNames(listen string, advertise []string) ([]string, error) {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
		if a, err := netip.ParseAddr(h); err != nil || !a.IsUnspecified() {
			names = append(names, h)
		}
	}
	for _, u := range advertise {
		p, err := url.Parse(u)
		if err != nil || p.Scheme != "https" || p.Hostname() == "" {
			return nil, fmt.Errorf("--advertise-url %q: want https://HOST[:PORT]", u)
		}
		names = append(names, p.Hostname())
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, nil, nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, nil, nil, err
	}
	ca, key, err := parseCA(certPEM, keyPEM)
	return ca, key, certPEM, err
}

// parseCA parses a CA certificate and its PKCS#8 ECDSA key, both PEM.
func parseCA(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("not PEM")
	}
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("CA key is not ECDSA")
	}
	if !key.PublicKey.Equal(ca.PublicKey) {
		return nil, nil, errors.New("the CA key does not match the CA certificate")
	}
	return ca, key, nil
}

func newCA(dir string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	ca, key, certPEM, keyPEM, err := makeCA(now)
	if err != nil {
		return nil, nil, nil, err
	}
	// The key first: a certificate without its key is not a CA we can use.
	if err := atomicfile.Write(filepath.Join(dir, CAKeyFile), keyPEM, 0o600, 0o700); err != nil {
		return nil, nil, nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, CACertFile), certPEM, 0o644, 0o700); err != nil {
		return nil, nil, nil, err
	}
	return ca, key, certPEM, nil
}

// makeCA makes a CA: its certificate, key, and both in PEM (the key PKCS#8).
func makeCA(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "wgnet controller CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	return ca, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), err
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}
