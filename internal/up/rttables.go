package up

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultRtTables are where iproute2 reads table names: /etc first, then the
// distribution's defaults.
var DefaultRtTables = []string{"/etc/iproute2", "/usr/share/iproute2"}

// rtTablesFiles lists the files naming tables under dirs: each dir's rt_tables,
// then its rt_tables.d/*.conf in name order, as iproute2's rtnl_rttable_init reads them.
func rtTablesFiles(dirs []string) []string {
	if dirs == nil {
		dirs = DefaultRtTables
	}
	var out []string
	for _, d := range dirs {
		out = append(out, filepath.Join(d, "rt_tables"))
		m, _ := filepath.Glob(filepath.Join(d, "rt_tables.d", "*.conf"))
		out = append(out, m...)
	}
	return out
}

// lookupRtTable resolves a table name as `ip route add ... table NAME` would:
// "NUMBER NAME" lines (the number decimal or 0x hex), # comments. The first
// file that names it wins. A missing file is skipped.
func lookupRtTable(name string, dirs []string) (int, bool, error) {
	for _, f := range rtTablesFiles(dirs) {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return 0, false, err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for line := 1; sc.Scan(); line++ {
			text, _, _ := strings.Cut(sc.Text(), "#")
			fields := strings.Fields(text)
			if len(fields) < 2 || fields[1] != name {
				continue
			}
			n, err := strconv.ParseUint(fields[0], 0, 32)
			if err != nil {
				return 0, false, fmt.Errorf("%s:%d: table number %q: %v", f, line, fields[0], err)
			}
			return int(n), true, nil
		}
	}
	return 0, false, nil
}
