package controller

import (
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestProxyListener serves HTTP behind ProxyListener on loopback and sends
// requests with PROXY protocol headers of both versions: the handler sees the
// client address the header gave (the balancer's own for LOCAL and UNKNOWN);
// a connection without a valid header never reaches the handler.
func TestProxyListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.RemoteAddr) })}
	go srv.Serve(ProxyListener(ln))
	defer srv.Close()
	v2 := func(cmd, fam byte, addr []byte) string {
		h := append([]byte(nil), proxySig...)
		h = append(h, 0x20|cmd, fam, 0, 0)
		binary.BigEndian.PutUint16(h[14:], uint16(len(addr)))
		return string(append(h, addr...))
	}
	v4 := []byte{198, 18, 5, 6, 127, 0, 0, 1, 0xc3, 0x50, 0x1c, 0xbb} // 198.18.5.6:50000 -> 127.0.0.1:7355
	v6 := make([]byte, 36)
	copy(v6, net.ParseIP("2001:db8::7"))
	copy(v6[16:], net.ParseIP("::1"))
	binary.BigEndian.PutUint16(v6[32:], 40000)
	for _, tc := range []struct{ name, header, want string }{
		{"v1 tcp4", "PROXY TCP4 198.18.1.2 127.0.0.1 51820 7443\r\n", "198.18.1.2:51820"},
		{"v1 tcp6", "PROXY TCP6 2001:db8::1 ::1 4000 7443\r\n", "[2001:db8::1]:4000"},
		{"v1 unknown", "PROXY UNKNOWN\r\n", "127.0.0.1:"},
		{"v2 tcp4", v2(1, 0x11, v4), "198.18.5.6:50000"},
		{"v2 tcp6", v2(1, 0x21, v6), "[2001:db8::7]:40000"},
		{"v2 local", v2(0, 0, nil), "127.0.0.1:"},
		{"none", "", ""},
		{"v1 garbage", "PROXY TCP4 nonsense\r\n", ""},
	} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, tc.header+"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(c)
		c.Close()
		body := string(b)
		if i := strings.Index(body, "\r\n\r\n"); i >= 0 {
			body = body[i+4:]
		}
		switch {
		case tc.want == "" && strings.HasPrefix(string(b), "HTTP/1.1 200"):
			t.Errorf("%s: answered %q, want the request refused", tc.name, b)
		case tc.want != "" && !strings.HasPrefix(body, tc.want):
			t.Errorf("%s: handler saw %q, want %s", tc.name, body, tc.want)
		}
	}
}
