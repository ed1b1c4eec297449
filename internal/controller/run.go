package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/atomicfile"
	"github.com/wgnet/wgnet/internal/store"
)

// Options of Run. The zero value of each optional field is documented.
type Options struct {
	Listen    string   // address to listen on, e.g. 127.0.0.1:7443
	DataDir   string   // holds the CA (and, for SQLite, the database); with CASecret, a copy of the CA certificate, or ""
	Advertise []string // https URLs clients use; their hosts go into the serving certificate
	// TLSCert and TLSKey, when both set, serve with the operator's certificate
	// (PEM chain and key) instead of one from the controller's own CA; the CA
	// pin is then that of the chain's last certificate. Empty: the own CA.
	TLSCert, TLSKey string
	// CASecret, when set, keeps the CA in the store (its key sealed with
	// this secret) instead of DataDir: every controller of a shared database
	// is given the same secret and serves the same CA (LoadStoredTLS).
	CASecret []byte
	// ProxyProtocol expects a PROXY protocol header (v1 or v2) at the start of
	// every connection, from a TCP load balancer, and takes the client's
	// address from it (ProxyListener).
	ProxyProtocol bool
	Log           *slog.Logger
	// Stdout receives the one-time admin token, the CA pin and the address (nil: os.Stdout).
	Stdout io.Writer
}

// Run serves the API over st on o.Listen until ctx is done: it loads or makes
// the CA, makes the first admin token when the store has none (printed once on
// Stdout, stored only as its hash), and prints the CA pin and the bound address.
func Run(ctx context.Context, st store.Store, o Options) error {
	out := o.Stdout
	if out == nil {
		out = os.Stdout
	}
	if o.DataDir != "" {
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return err
		}
	}
	names, err := ServingNames(o.Listen, o.Advertise)
	if err != nil {
		return err
	}
	var id *TLS
	caFile := filepath.Join(o.DataDir, CACertFile)
	switch {
	case (o.TLSCert == "") != (o.TLSKey == ""):
		return errors.New("controller: give both --tls-cert and --tls-key, or neither")
	case o.TLSCert != "":
		id, err = LoadOperatorTLS(o.TLSCert, o.TLSKey)
		caFile = o.TLSCert
	case len(o.CASecret) > 0:
		id, err = LoadStoredTLS(ctx, st, o.CASecret, names, time.Now())
		caFile = "(in the store)"
		if err == nil && o.DataDir != "" {
			caFile = filepath.Join(o.DataDir, CACertFile)
			err = atomicfile.Write(caFile, id.CAPEM, 0o644, 0o700)
		}
	case o.DataDir == "":
		return errors.New("controller: give --data DIR, or a CA secret to keep the CA in the store")
	default:
		id, err = LoadTLS(o.DataDir, names, time.Now())
	}
	if err != nil {
		return err
	}
	tok, err := EnsureAdminToken(ctx, st)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	if o.ProxyProtocol {
		ln = ProxyListener(ln)
	}
	if tok != "" {
		fmt.Fprintf(out, "admin token (shown once; only its hash is stored):\n%s\n", tok)
	}
	fmt.Fprintf(out, "ca %s %s\n", api.CAHash(id.CA), strings.ReplaceAll(caFile, " ", "-"))
	fmt.Fprintf(out, "listening https://%s\n", ln.Addr())
	urls := o.Advertise
	if len(urls) == 0 {
		urls = []string{"https://" + ln.Addr().String()}
	}
	cfg := Config{Log: o.Log, URLs: urls, CAHash: api.CAHash(id.CA)}
	srv := New(st, cfg)
	defer srv.Close()
	hs := &http.Server{Handler: srv, TLSConfig: id.Config, ReadHeaderTimeout: 10 * time.Second,
		// Long polls end with ctx, so that a shutdown does not wait for them.
		BaseContext: func(net.Listener) context.Context { return ctx }}
	if o.Log != nil {
		hs.ErrorLog = slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = hs.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// EnsureAdminToken makes an admin token when the store has none and returns
// its secret ("" when one existed); only the hash is stored. Of several
// controllers starting at once on one database, one makes it.
func EnsureAdminToken(ctx context.Context, st store.Store) (string, error) {
	hs, err := st.AdminTokens(ctx)
	if err != nil || len(hs) > 0 {
		return "", err
	}
	tok, err := NewToken("wgnet-admin-")
	if err != nil {
		return "", err
	}
	ctx = store.WithActor(ctx, "controller (first start)")
	made, err := st.FirstAdminToken(ctx, store.HashToken(tok))
	if err != nil || !made {
		return "", err
	}
	return tok, nil
}
