// Package pgtest starts a real PostgreSQL server for tests, from the
// distribution's package (Debian's postgresql: binaries in
// /usr/lib/postgresql/VERSION/bin, not on PATH). The cluster lives in a
// temporary directory of its own and listens only on a Unix socket in that
// directory (listen_addresses=”), so no TCP port is opened and a socket path
// reaches it from every network namespace. initdb refuses to run as root, so
// as root the cluster is made and run as uid/gid 65534 (nobody) on a directory
// chowned to it. It is stopped with pg_ctl (its own data directory, so only
// this postmaster) and removed at the end. The machine's own cluster is never
// touched.
//
// A test calls Shared (one server per test binary, stopped by Main) or Start
// (a server of its own, stopped by t.Cleanup), then NewDatabase for a fresh,
// empty database. Without the binaries the test skips with what to install,
// and fails under WGNET_TEST_STRICT=1 (netnstest.Needs).
package pgtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/netnstest"
)

// BinEnv names a directory holding initdb, pg_ctl and psql, to use instead
// of the newest /usr/lib/postgresql/*/bin.
const BinEnv = "WGNET_PG_BIN"

// User is the cluster's superuser; Password its password (the cluster asks
// for it: scram-sha-256 on the socket, so tests exercise password handling).
const (
	User     = "wgnet"
	Password = "wgnet-test-password"
)

// nobody is the uid and gid the cluster runs as when the test runs as root.
const nobody = 65534

// Server is one running PostgreSQL cluster.
type Server struct {
	Dir  string // the temporary directory: data/, the socket, the log
	bin  string
	cred *syscall.Credential // nil: run as ourselves

	mu      sync.Mutex
	stopped bool
	dbs     int
}

// Bin returns the directory of PostgreSQL's server binaries, or "" when none
// is installed.
func Bin() string {
	if d := os.Getenv(BinEnv); d != "" {
		return d
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return va - vb
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

// Need skips (fails under WGNET_TEST_STRICT=1) unless PostgreSQL's server
// binaries are installed, and returns their directory.
func Need(t testing.TB) string {
	t.Helper()
	bin := Bin()
	for _, tool := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, tool)); bin == "" || err != nil {
			netnstest.Needs(t, "needs PostgreSQL's %s in /usr/lib/postgresql/*/bin or $%s (Debian package postgresql)", tool, BinEnv)
		}
	}
	return bin
}

var shared struct {
	sync.Mutex
	s   *Server
	err error
}

// Shared returns the test binary's one server, starting it on first use; Main
// stops it after the tests.
func Shared(t testing.TB) *Server {
	t.Helper()
	bin := Need(t)
	shared.Lock()
	defer shared.Unlock()
	if shared.s == nil && shared.err == nil {
		shared.s, shared.err = start(bin)
	}
	if shared.err != nil {
		t.Fatalf("start PostgreSQL: %v", shared.err)
	}
	return shared.s
}

// Main runs the tests and then stops the shared server, if one was started:
// call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	shared.Lock()
	if shared.s != nil {
		if err := shared.s.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	shared.Unlock()
	os.Exit(code)
}

// Start starts a server of the test's own, stopped and removed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start(Need(t))
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// ownerFile names, in a cluster's directory, the PID of the test process
// that started it.
const ownerFile = "owner.pid"

func start(bin string) (*Server, error) {
	reapOrphans(bin)
	dir, err := os.MkdirTemp("", "wgnet-pg-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{Dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		s.cred = &syscall.Credential{Uid: nobody, Gid: nobody}
		if err := os.Chown(dir, nobody, nobody); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(Password+"\n"), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if s.cred != nil {
		os.Chown(pwfile, nobody, nobody)
	}
	if out, err := s.run("initdb", "-D", s.data(), "-U", User, "--pwfile", pwfile, "--auth", "scram-sha-256",
		"--encoding", "UTF8", "--locale", "C", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	os.Remove(pwfile)
	// Only the socket in dir; fsync off: the tests kill controllers, never
	// this server, so its durability is not what they test, and it is fast.
	opts := strings.Join([]string{
		"-c listen_addresses=''", "-c unix_socket_directories=" + dir, "-c port=5432",
		"-c fsync=off", "-c full_page_writes=off", "-c max_connections=300",
		"-c shared_buffers=32MB", "-c log_min_messages=warning",
	}, " ")
	if out, err := s.run("pg_ctl", "start", "-w", "-t", "60", "-D", s.data(), "-l", filepath.Join(dir, "postgres.log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
		s.Stop()
		return nil, fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
	return s, nil
}

func (s *Server) data() string { return filepath.Join(s.Dir, "data") }

// run runs one of the server's binaries as the cluster's user.
func (s *Server) run(tool string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.bin, tool), args...)
	cmd.Dir = s.Dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + s.Dir}
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// reapOrphans stops and removes the clusters that test processes which are
// gone left behind (a test binary killed by its timeout or a panic never
// reaches Stop): only directories of this package's pattern whose owner PID
// is no longer running, each stopped by pg_ctl on its own data directory.
func reapOrphans(bin string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "wgnet-pg-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // starting, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 || syscall.Kill(pid, 0) == nil {
			continue // its test still runs
		}
		s := &Server{Dir: dir, bin: bin}
		if fi, err := os.Stat(dir); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == nobody && os.Geteuid() == 0 {
				s.cred = &syscall.Credential{Uid: nobody, Gid: nobody}
			}
		}
		if err := s.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: orphaned cluster", dir, err)
		}
	}
}

// PID returns the postmaster's PID, from its postmaster.pid.
func (s *Server) PID() (int, error) {
	b, err := os.ReadFile(filepath.Join(s.data(), "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

// Stop stops the postmaster (pg_ctl stop on this data directory; if that
// fails, SIGQUIT to its own PID) and removes the directory.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	var err error
	if _, e := os.Stat(filepath.Join(s.data(), "postmaster.pid")); e == nil {
		if out, e := s.run("pg_ctl", "stop", "-w", "-t", "30", "-m", "fast", "-D", s.data()); e != nil {
			err = fmt.Errorf("pg_ctl stop: %v: %s", e, out)
			if pid, e := s.PID(); e == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGQUIT)
				time.Sleep(time.Second)
			}
		}
	}
	return joinErr(err, os.RemoveAll(s.Dir))
}

func joinErr(a, b error) error {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	return fmt.Errorf("%v; %v", a, b)
}

// URL returns a connection URL for database db, as the superuser, over the
// Unix socket, with the password in the URL (tests only; wgnet itself takes
// the password from a file or the environment).
func (s *Server) URL(db string) string {
	return s.URLWithoutPassword(db) + "&password=" + url.QueryEscape(Password)
}

// URLWithoutPassword is URL without the password.
func (s *Server) URLWithoutPassword(db string) string {
	return "postgres:///" + db + "?host=" + url.QueryEscape(s.Dir) + "&user=" + User + "&sslmode=disable"
}

// NewDatabase creates a new, empty database with a unique name and returns
// its name.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	s.mu.Lock()
	s.dbs++
	name := fmt.Sprintf("wgnet_%d_%s", s.dbs, hex.EncodeToString(b))
	s.mu.Unlock()
	if out, err := s.Psql("postgres", "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v: %s", err, out)
	}
	return name
}

// Psql runs one SQL command in db with psql, as the superuser.
func (s *Server) Psql(db, command string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-c", command, s.URL(db))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	return cmd.CombinedOutput()
}
