package intent

import "strings"

// externalPeerComment marks, in a rendered config, the peer of a host the spec
// calls external (external: true): wgnet writes no config for it, so a set of
// rendered configs never holds its key, and check expects it outside the set.
const externalPeerComment = "external: a host wgnet writes no config for"

// ExternalPeerComment is the comment compile puts on such a peer.
func ExternalPeerComment() string {
	return externalPeerComment + " (`external: true` in the spec): its own config is not in this set"
}

// CommentedExternal reports whether a peer's comments mark it external.
func CommentedExternal(comments []string) bool {
	for _, c := range comments {
		if strings.HasPrefix(strings.TrimSpace(c), externalPeerComment) {
			return true
		}
	}
	return false
}
