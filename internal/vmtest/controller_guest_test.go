package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestGuestController is the guest half of TestControllerVMKill: in mode
// controller-burst it starts `wgnet controller` on the disk and adds hosts
// from 8 writers until the host kills the VM, printing a WGNET-ACK line for
// every 2xx; in mode controller-verify it starts the controller again on the
// same disk and prints a WGNET-HAVE line per stored host and a WGNET-REV line.
// It speaks the API with net/http, as any client would.
func TestGuestController(t *testing.T) {
	mode, disk := os.Getenv("WGNET_VM_MODE"), os.Getenv("WGNET_VM_DISK")
	if os.Getenv(guestEnv) != "1" || disk == "" {
		t.Skip("runs only inside the test VM that TestControllerVMKill boots (WGNET_QEMU_TEST=1)")
	}
	data, tokenFile := filepath.Join(disk, "controller"), filepath.Join(disk, "admin-token")
	ctx, cancel := context.WithTimeout(context.Background(), 140*time.Second)
	defer cancel()
	c := startGuestController(ctx, t, data)
	switch mode {
	case "controller-burst":
		if c.token == "" {
			t.Fatal("the controller printed no admin token on a new data directory")
		}
		writeSynced(t, tokenFile, []byte(c.token))
		c.call(t, "POST", "/v1/networks", map[string]any{"name": "n", "topology": "mesh", "subnets": []string{"10.8.0.0/16"}}, nil)
		burst(ctx, t, c)
		t.Error("the burst ended and the VM is still running: the host did not kill it")
	case "controller-verify":
		tok, err := os.ReadFile(tokenFile)
		if err != nil {
			t.Fatal(err)
		}
		c.token = string(tok)
		var hs struct {
			Network struct {
				Revision uint64 `json:"revision"`
			} `json:"network"`
			Hosts []struct {
				Name      string   `json:"name"`
				Addresses []string `json:"addresses"`
			} `json:"hosts"`
		}
		c.call(t, "GET", "/v1/networks/n/hosts", nil, &hs)
		for _, h := range hs.Hosts {
			fmt.Printf("WGNET-HAVE host=%s addr=%s\n", h.Name, strings.Join(h.Addresses, ","))
		}
		fmt.Printf("WGNET-REV rev=%d hosts=%d\n", hs.Network.Revision, len(hs.Hosts))
	default:
		t.Fatalf("WGNET_VM_MODE=%q", mode)
	}
}

// burst adds up to 1,000 hosts from 8 writers and prints each acknowledged one.
func burst(ctx context.Context, t *testing.T, c *guestController) {
	const writers, total = 8, 1000
	var mu sync.Mutex // orders the ACK lines with their count
	acked := 0
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total && ctx.Err() == nil; i += writers {
				key := make([]byte, 32)
				rand.Read(key)
				name := fmt.Sprintf("h%04d", i)
				var r struct {
					Host struct {
						Addresses []string `json:"addresses"`
					} `json:"host"`
				}
				c.call(t, "POST", "/v1/networks/n/hosts", map[string]any{
					"name": name, "public_key": base64.StdEncoding.EncodeToString(key),
					"endpoint": fmt.Sprintf("192.0.2.%d:%d", i%250+1, 51820+i),
				}, &r)
				mu.Lock()
				acked++
				fmt.Printf("WGNET-ACK n=%d host=%s addr=%s\n", acked, name, strings.Join(r.Host.Addresses, ","))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// guestController is a `wgnet controller` process and a client of it.
type guestController struct {
	url, token string
	http       *http.Client
}

// startGuestController runs `wgnet controller` on data, listening on a
// loopback port, and returns once it listens; ctx's end kills it.
func startGuestController(ctx context.Context, t *testing.T, data string) *guestController {
	t.Helper()
	wgnet, err := exec.LookPath("wgnet")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, wgnet, "controller", "--listen", "127.0.0.1:0", "--data", data)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := &guestController{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "wgnet-admin-") {
			c.token = line
		}
		if addr, ok := strings.CutPrefix(line, "listening https://"); ok {
			c.url = "https://" + addr
			break
		}
	}
	if c.url == "" {
		t.Fatalf("wgnet controller exited before listening: %v", sc.Err())
	}
	go io.Copy(io.Discard, stdout)
	ca, err := os.ReadFile(filepath.Join(data, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("ca.crt holds no certificate")
	}
	c.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return c
}

// call sends one request and decodes a 2xx answer into out; anything else
// fails the test.
func (c *guestController) call(t *testing.T, method, path string, body, out any) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Error(err)
			runtime.Goexit()
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		t.Error(err)
		runtime.Goexit()
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		runtime.Goexit()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
		runtime.Goexit()
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			runtime.Goexit()
		}
	}
}

// writeSynced writes a file and makes it and its directory entry durable.
func writeSynced(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}
