package api

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Digest is a set hash of a host's desired state, which a delta carries
// (AgentDelta.Digest) so that an agent finds at once a state of its own
// that differs from the controller's (a bug, a lost record): the sum, lane
// by lane modulo 2^64, of the SHA-256 of the head (the state without its
// peers, revision and URLs) and of each peer, each as JSON. A sum, not a
// hash of the whole, so that both sides keep it up to date in proportion
// to what changed (Add and Sub a peer's or a head's digest), never
// reading the 999 other peers of a host in a mesh of 1,000; a peer counted
// twice counts twice. It is not a defence against a controller that lies:
// the agent's guardrails are.
type Digest [4]uint64

// Add returns d plus x.
func (d Digest) Add(x Digest) Digest {
	for i := range d {
		d[i] += x[i]
	}
	return d
}

// Sub returns d minus x.
func (d Digest) Sub(x Digest) Digest {
	for i := range d {
		d[i] -= x[i]
	}
	return d
}

// String is the wire form: 64 hex digits.
func (d Digest) String() string {
	var b [32]byte
	for i, v := range d {
		binary.BigEndian.PutUint64(b[8*i:], v)
	}
	return hex.EncodeToString(b[:])
}

// ParseDigest parses what String writes.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return d, fmt.Errorf("digest %q: want 64 hex digits", s)
	}
	for i := range d {
		d[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	return d, nil
}

// digestOf is the digest of one element: kind apart, then its JSON.
func digestOf(kind string, v any) Digest {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain strings, numbers and slices of them: never
	}
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write(b)
	var sum [32]byte
	h.Sum(sum[:0])
	var d Digest
	for i := range d {
		d[i] = binary.BigEndian.Uint64(sum[8*i:])
	}
	return d
}

// PeerDigest is one peer's part of a state's digest.
func PeerDigest(p *Peer) Digest { return digestOf("peer", p) }

// HeadDigest is the head's part of a state's digest: every field of st but
// its peers, revision and URLs.
func HeadDigest(st *AgentState) Digest {
	h := *st
	h.Peers, h.Revision, h.URLs = nil, 0, nil
	return digestOf("head", &h)
}

// StateDigest is the digest of st, worked out whole.
func StateDigest(st *AgentState) Digest {
	d := HeadDigest(st)
	for i := range st.Peers {
		d = d.Add(PeerDigest(&st.Peers[i]))
	}
	return d
}
