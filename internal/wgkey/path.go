package wgkey

import (
	"regexp"
	"strings"
)

// pathRE is the alphabet of a key file path: no character any shell treats
// specially, so the path can stand unquoted in a wg-quick hook
// (`wg set %i private-key PATH`), where quoting is not safe either.
var pathRE = regexp.MustCompile(`^/[A-Za-z0-9._+/-]+$`)

// PathRule says, for messages, what ValidPath accepts.
const PathRule = "an absolute path of letters, digits and . _ + - / with no .. part"

// ValidPath reports whether path may name a private key file on a host: an
// absolute path of [A-Za-z0-9._+/-] with no ".." component. Such a path is data
// wherever it is pasted; anything else could be a command.
func ValidPath(path string) bool {
	if !pathRE.MatchString(path) {
		return false
	}
	for _, part := range strings.Split(path, "/") {
		if part == ".." {
			return false
		}
	}
	return true
}
