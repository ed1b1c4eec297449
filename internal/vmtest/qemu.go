package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// BootOptions says how to boot the test VM. The zero values of the optional fields
// are documented on each.
type BootOptions struct {
	QEMU    string // qemu-system-x86_64 binary; "" finds it in PATH
	Kernel  string // kernel image
	Initrd  string // initramfs
	Append  string // kernel command line; "" means DefaultAppend
	Memory  int    // MiB; 0 means 1024
	CPUs    int    // 0 means 2
	KVM     bool   // use KVM (-enable-kvm -cpu host); else TCG emulation
	Console io.Writer
	// Started is console text that shows the VM's userspace runs (the first line
	// /init prints). When it has not appeared within StartTimeout, Boot stops qemu
	// and returns an error wrapping ErrNoStart: a KVM that accepts the VM and then
	// never runs it (as a nested one can) is told apart from a slow test. Zero
	// StartTimeout or empty Started: no such check.
	Started      string
	StartTimeout time.Duration
	// Drives are raw disk images attached as virtio disks (/dev/vda, /dev/vdb,
	// ...) with qemu's writeback cache: what the guest has flushed is in the
	// host's page cache and survives qemu's death; what it has not is lost with
	// the guest's memory, as on a machine that loses power.
	Drives []string
	// KillOn is console text at which Boot kills qemu with SIGKILL, the
	// hypervisor's view of a crash: the guest gets no chance to write anything
	// back. Boot then returns the console and an error wrapping ErrKilled. Empty:
	// never.
	KillOn string
}

// ErrNoStart is returned (wrapped) by Boot when BootOptions.Started did not appear
// in time.
var ErrNoStart = errors.New("the VM did not start")

// ErrKilled is returned (wrapped) by Boot when it killed qemu at BootOptions.KillOn.
var ErrKilled = errors.New("qemu killed")

// DefaultAppend is the kernel command line: console on the serial port, quiet,
// and a panic (an /init that exits) stops the VM instead of hanging it.
const DefaultAppend = "console=ttyS0 quiet loglevel=3 panic=-1 random.trust_cpu=on"

// KVMUsable reports whether qemu can use KVM to run a stock kernel, and why not.
// /dev/kvm must open; and the host's KVM must not be PVM (module kvm_pvm, a nested
// KVM without hardware virtualization, as on this project's build machines), which
// runs only guest kernels built for it: a stock one hangs before printing anything.
func KVMUsable() (bool, string) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false, err.Error()
	}
	f.Close()
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		return false, "the host's KVM is PVM (kvm_pvm), which runs only PVM guest kernels"
	}
	return true, ""
}

// Args returns qemu's command line. The VM has no network device and no display:
// only the serial console, on qemu's standard output, and the disks in Drives.
func (o BootOptions) Args() []string {
	mem, cpus, app := o.Memory, o.CPUs, o.Append
	if mem == 0 {
		mem = 1024
	}
	if cpus == 0 {
		cpus = 2
	}
	if app == "" {
		app = DefaultAppend
	}
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
		"-nic", "none", "-no-reboot",
		"-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-kernel", o.Kernel, "-initrd", o.Initrd, "-append", app,
	}
	for _, d := range o.Drives {
		// qemu's -drive takes a comma-separated list: a comma in the path is doubled.
		args = append(args, "-drive", "file="+strings.ReplaceAll(d, ",", ",,")+",format=raw,if=virtio,cache=writeback")
	}
	if o.KVM {
		args = append(args, "-enable-kvm", "-cpu", "host")
	} else {
		args = append(args, "-accel", "tcg", "-cpu", "max")
	}
	return args
}

// Boot runs the VM until it powers off (or ctx ends, which kills qemu) and returns
// its console output, which is also copied to o.Console.
func Boot(ctx context.Context, o BootOptions) ([]byte, error) {
	q := o.QEMU
	if q == "" {
		var err error
		if q, err = exec.LookPath("qemu-system-x86_64"); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &watchBuffer{}
	started, kill := out.watch(o.Started), out.watch(o.KillOn)
	cmd := exec.CommandContext(ctx, q, o.Args()...)
	w := io.Writer(out)
	if o.Console != nil {
		w = io.MultiWriter(out, o.Console)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	var noStart, killed atomic.Bool
	if o.Started != "" && o.StartTimeout > 0 {
		watchdog := time.NewTimer(o.StartTimeout)
		defer watchdog.Stop()
		go func() {
			select {
			case <-started:
			case <-ctx.Done():
			case <-watchdog.C:
				noStart.Store(true)
				cancel()
			}
		}()
	}
	if o.KillOn != "" {
		go func() {
			select {
			case <-kill:
				killed.Store(true)
				cmd.Process.Kill() // SIGKILL: Wait reaps it
			case <-ctx.Done():
			}
		}()
	}
	err := cmd.Wait()
	switch {
	case killed.Load():
		return out.bytes(), fmt.Errorf("qemu: %w at %q", ErrKilled, o.KillOn)
	case noStart.Load():
		return out.bytes(), fmt.Errorf("qemu: %w: no %q on the console within %v", ErrNoStart, o.Started, o.StartTimeout)
	case ctx.Err() != nil:
		return out.bytes(), fmt.Errorf("qemu: %w", ctx.Err())
	case err != nil:
		return out.bytes(), fmt.Errorf("qemu: %w", err)
	}
	return out.bytes(), nil
}

// watchBuffer collects the console and tells watchers when their text appears.
type watchBuffer struct {
	mu      sync.Mutex // guards buf and watches
	buf     bytes.Buffer
	watches []*watch
}

// watch is console text someone waits for.
type watch struct {
	want []byte
	from int // where the next search starts: the text cannot end before it
	seen chan struct{}
}

// watch returns a channel closed once s has appeared on the console; for an
// empty s, one that is never closed.
func (w *watchBuffer) watch(s string) <-chan struct{} {
	ch := make(chan struct{})
	if s == "" {
		return ch
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.watches = append(w.watches, &watch{want: []byte(s), seen: ch})
	return ch
}

func (w *watchBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	b := w.buf.Bytes()
	live := w.watches[:0]
	for _, x := range w.watches {
		if bytes.Contains(b[x.from:], x.want) {
			close(x.seen)
			continue
		}
		x.from = max(0, len(b)-len(x.want)+1)
		live = append(live, x)
	}
	w.watches = live
	return len(p), nil
}

func (w *watchBuffer) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf.Bytes())
}

// Console markers that the VM's /init (testdata/init) prints, each on a line of
// its own.
const (
	markBegin = "WGNET-VM-BEGIN "
	markEnd   = "WGNET-VM-END "
	markDone  = "WGNET-VM-DONE "
)

// Result is what the VM's console says about the runs inside.
type Result struct {
	// Runs lists each run's name and exit status, in order.
	Runs []Run
	// Done is set when /init got to its end; RC is its overall status.
	Done bool
	RC   int
}

// Run is one program that /init ran.
type Run struct {
	Name   string
	RC     int
	Output string // the console lines between its BEGIN and END markers
}

var endRE = regexp.MustCompile(`^WGNET-VM-END (\S+) rc=(\d+)$`)

// ParseConsole reads the markers in a console log. Kernel messages and carriage
// returns around the lines are tolerated; a run that began and never ended, or a
// malformed marker, is an error.
func ParseConsole(out []byte) (Result, error) {
	var r Result
	var cur *Run
	var buf strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, markBegin):
			if cur != nil {
				return r, fmt.Errorf("console: %s began before %s ended", line, cur.Name)
			}
			cur = &Run{Name: strings.TrimPrefix(line, markBegin)}
			buf.Reset()
		case strings.HasPrefix(line, markEnd):
			m := endRE.FindStringSubmatch(line)
			if m == nil {
				return r, fmt.Errorf("console: malformed marker %q", line)
			}
			if cur == nil || cur.Name != m[1] {
				return r, fmt.Errorf("console: %q without its BEGIN", line)
			}
			cur.RC, _ = strconv.Atoi(m[2])
			cur.Output = buf.String()
			r.Runs = append(r.Runs, *cur)
			cur = nil
		case strings.HasPrefix(line, markDone):
			rc, ok := strings.CutPrefix(line, markDone+"rc=")
			n, err := strconv.Atoi(rc)
			if !ok || err != nil {
				return r, fmt.Errorf("console: malformed marker %q", line)
			}
			r.Done, r.RC = true, n
		default:
			if cur != nil {
				buf.WriteString(line)
				buf.WriteByte('\n')
			}
		}
	}
	if cur != nil {
		return r, fmt.Errorf("console: %s began and never ended (the VM stopped or hung)", cur.Name)
	}
	if err := sc.Err(); err != nil {
		return r, err
	}
	if !r.Done {
		return r, errors.New("console: the VM's /init never finished")
	}
	return r, nil
}
