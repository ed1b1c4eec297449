package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/live"
	"github.com/wgnet/wgnet/internal/up"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// liveTimeout bounds a whole `check --live` (the probes are bounded each too).
const liveTimeout = 60 * time.Second

// runCheckLive diagnoses the running interfaces names (every one wgnet brought
// up in this namespace when names is empty): one finding per problem on
// stdout, a summary on stderr; exit 1 on any finding, 2 when it can't run.
func runCheckLive(ctx context.Context, names []string, format string, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	dir := stateDir()
	if len(names) == 0 {
		n, err := up.Names(dir)
		if err != nil {
			return fmt.Errorf("check --live: %w", err)
		}
		names = n
		if len(names) == 0 {
			return fmt.Errorf("check --live: wgnet brought no interface up here (%s); name one: wgnet check --live NAME", dir)
		}
	}
	var findings diag.List
	for _, name := range names {
		ex, err := liveExpect(name, dir, stderr)
		if err != nil {
			return fmt.Errorf("check --live %s: %w", name, advise(err))
		}
		dev, err := device.Open(name)
		if err != nil {
			return fmt.Errorf("check --live %s: %w", name, err)
		}
		f, err := live.Check(ctx, ex, dev, hostnet.New(), live.System{}, live.Options{})
		dev.Close()
		if err != nil {
			return fmt.Errorf("check --live %s: %w", name, err)
		}
		findings = append(findings, f...)
	}
	if err := writeFindings(findings, format, stdout, stderr); err != nil {
		return err
	}
	if len(findings) > 0 {
		return errProblems("")
	}
	return nil
}

// liveExpect is what interface name should be, from wgnet's state record and
// the config or spec host it came from. An interface wgnet did not bring up is
// checked against the device alone.
func liveExpect(name, dir string, stderr io.Writer) (live.Expect, error) {
	ex := live.Expect{Name: name}
	st, err := up.LoadState(dir, name)
	if errors.Is(err, os.ErrNotExist) {
		return ex, nil
	}
	if err != nil {
		return ex, err
	}
	ex.Routes, ex.Names, ex.Started, ex.HostFirewall = st.Routes, st.Peers, st.Started, st.HostFirewallMode
	fwd := "net/ipv4/conf/" + name + "/forwarding"
	for _, s := range st.Sysctls {
		if s.Key == fwd && s.New == "1" {
			ex.Relay = true
		}
	}
	h := sourceIntent(st.Source, stderr)
	if h == nil {
		return ex, nil
	}
	ex.Relay = ex.Relay || h.Forward.V4
	if len(h.Routes) > 0 {
		ex.Routed = h.Routes
	}
	ex.Endpoints = map[wgkey.Key]string{}
	for _, p := range h.Peers {
		if p.Endpoint != nil {
			ex.Endpoints[p.PublicKey] = p.Endpoint.String()
		}
	}
	if h.KeyFile != "" {
		if fi, err := os.Stat(h.KeyFile); err == nil {
			ex.KeyChanged = fi.ModTime()
		}
	}
	return ex, nil
}

// sourceIntent reads the host an interface was brought up from: a config file,
// or "SPEC --host HOST". Nil when it is gone or does not read: the live checks
// then go by the state record and the device.
func sourceIntent(source string, stderr io.Writer) *intent.Host {
	if spec, host, ok := strings.Cut(source, " --host "); ok {
		n, err := loadSpecNetwork(spec, io.Discard)
		if err != nil {
			fmt.Fprintf(stderr, "wgnet: note: %s: %v; checking without it\n", spec, err)
			return nil
		}
		h, err := n.host(host)
		if err != nil {
			return nil
		}
		return h
	}
	if source == "" {
		return nil
	}
	src, err := os.ReadFile(source)
	if err != nil {
		fmt.Fprintf(stderr, "wgnet: note: %v; checking without the config\n", err)
		return nil
	}
	cfg, err := wgconf.Parse(source, src)
	if err != nil {
		return nil
	}
	h, _ := intent.FromConfig(cfg)
	// A forwarding hook the user wrote is run as written, not taken into
	// Forward: the host forwards all the same.
	v4, v6 := intent.HooksForward(h.Hooks.PostUp)
	h.Forward.V4, h.Forward.V6 = h.Forward.V4 || v4, h.Forward.V6 || v6
	return h
}
