package up

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/hostnet"
)

// NetnsStateDir returns the state directory of the calling thread's network
// namespace, DefaultStateDir/INODE: an interface name is only unique within a
// namespace, so wg0 of one is not wg0 of another, and neither is its lock.
// Without namespaces (not Linux) it is DefaultStateDir.
//
// It first moves into that directory the records that wgnet wrote into
// DefaultStateDir itself before namespaces were kept apart, for the interfaces
// that are in this namespace: a kernel interface of that name is here, or the
// userspace daemon the record names runs here (/proc/PID/ns/net). A record of a
// change waiting for confirmation stays where its timer looks for it.
func NetnsStateDir() string {
	here, err := netnsHere()
	if err != nil {
		return DefaultStateDir
	}
	dir := netnsDir(DefaultStateDir, here)
	adoptOld(DefaultStateDir, dir, here, livesHere)
	return dir
}

func netnsDir(root string, ino uint64) string {
	return filepath.Join(root, strconv.FormatUint(ino, 10))
}

// livesHere reports whether the interface of st, an unstamped record, is in the
// network namespace here.
func livesHere(st *State, here uint64) bool {
	if st.Backend == device.BackendUserspace && st.PID != 0 {
		ns, err := netnsOfPID(st.PID)
		return err == nil && ns == here
	}
	_, err := hostnet.New().Link(st.Name)
	return err == nil
}

var errNotHere = errors.New("not in this network namespace")

// adoptOld moves the records in root that lives says are in namespace here into
// dir, and returns their names.
func adoptOld(root, dir string, here uint64, lives func(*State, uint64) bool) []string {
	m, _ := filepath.Glob(filepath.Join(root, "*.json"))
	var moved []string
	for _, f := range m {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		if !ValidName(name) {
			continue
		}
		if err := adoptOne(root, dir, name, here, lives); err == nil {
			moved = append(moved, name)
		}
	}
	return moved
}

// adoptOne moves name's record, its daemon's pid and log files and its timer's
// log from root to dir, holding name's lock in both.
func adoptOne(root, dir, name string, here uint64, lives func(*State, uint64) bool) error {
	if _, err := os.Lstat(pendingPath(root, name)); err == nil {
		return fmt.Errorf("%s: a change is waiting for confirmation in %s", name, root)
	}
	st, err := LoadState(root, name) // refuses a record of another namespace
	if err != nil {
		return err
	}
	if st.Netns == 0 && !lives(st, here) {
		return errNotHere
	}
	unlockOld, err := lockWithin(root, name, time.Second)
	if err != nil {
		return err
	}
	defer unlockOld()
	unlockNew, err := lockWithin(dir, name, time.Second)
	if err != nil {
		return err
	}
	defer unlockNew()
	// Again, under the locks: another wgnet may have moved it meanwhile.
	if st, err = LoadState(root, name); err != nil {
		return err
	}
	if _, err := os.Lstat(statePath(dir, name)); err == nil {
		return fmt.Errorf("%s: %s exists too", name, statePath(dir, name))
	}
	move := func(file string) error {
		err := os.Rename(filepath.Join(root, file), filepath.Join(dir, file))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, f := range []string{name + ".pid", name + ".log", filepath.Base(TimerLog(root, name))} {
		if err := move(f); err != nil {
			return err
		}
	}
	if st.LogFile == filepath.Join(root, name+".log") {
		st.LogFile = filepath.Join(dir, name+".log")
	}
	if err := move(name + ".json"); err != nil {
		return err
	}
	return st.save(dir)
}
