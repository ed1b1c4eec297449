package wgconf

import (
	"path/filepath"
	"regexp"
	"strings"
)

// ifaceLike matches file names that name an interface rather than a host.
var ifaceLike = regexp.MustCompile(`^wg[0-9]*$`)

// HostNames names the host of each config file of a network: the file name without
// ".conf" (s2.conf → s2); or the directory's name when the file is named like an
// interface (but not in /etc/wireguard) or several files share a name
// (out/s1/wg0.conf → s1). Names that would
// still collide are the paths without ".conf". check, import and lab all name
// hosts this way.
func HostNames(files []string) []string {
	count := func(names []string) map[string]int {
		m := map[string]int{}
		for _, n := range names {
			m[n]++
		}
		return m
	}
	names := make([]string, len(files))
	for i, f := range files {
		if f != "" {
			names[i] = strings.TrimSuffix(filepath.Base(f), ".conf")
		}
	}
	bases := count(names)
	for i, f := range files {
		dir := filepath.Base(filepath.Dir(f))
		byDir := bases[names[i]] > 1 || ifaceLike.MatchString(names[i]) && dir != "wireguard" // /etc/wireguard/wg0.conf is wg0
		if f != "" && byDir && dir != "." && dir != string(filepath.Separator) {
			names[i] = dir
		}
	}
	final := count(names)
	for i, f := range files {
		if final[names[i]] > 1 && f != "" {
			names[i] = strings.TrimSuffix(filepath.ToSlash(f), ".conf")
		}
	}
	return names
}
