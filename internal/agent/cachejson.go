package agent

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/wgnet/wgnet/internal/api"
)

// The cache holds the whole state (a mesh of 1,000 has 999 peers) and is
// written at every change: encoding/json's reflection over the peers was
// the agent's largest cost per delta after the guardrails. marshalCache
// writes the peers by hand and the rest through encoding/json, byte for
// byte what json.Marshal writes (TestMarshalCache checks it).

// marshalCache is json.Marshal(c).
func marshalCache(c Cache) ([]byte, error) {
	peers := c.State.Peers
	c.State.Peers = nil
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	const hole = `"peers":null`
	i := bytes.Index(b, []byte(hole))
	if i < 0 || peers == nil {
		c.State.Peers = peers
		return json.Marshal(c)
	}
	out := make([]byte, 0, len(b)+len(peers)*160)
	out = append(out, b[:i+len(`"peers":`)]...)
	out = append(out, '[')
	for k := range peers {
		if k > 0 {
			out = append(out, ',')
		}
		out = appendPeer(out, &peers[k])
	}
	out = append(out, ']')
	return append(out, b[i+len(hole):]...), nil
}

// appendPeer appends p as json.Marshal writes an api.Peer (its tags:
// endpoint and keepalive omitted when empty).
func appendPeer(b []byte, p *api.Peer) []byte {
	b = append(b, `{"name":`...)
	b = appendString(b, p.Name)
	b = append(b, `,"public_key":`...)
	b = appendString(b, p.PublicKey)
	if p.Endpoint != "" {
		b = append(b, `,"endpoint":`...)
		b = appendString(b, p.Endpoint)
	}
	b = append(b, `,"allowed_ips":`...)
	if p.AllowedIPs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for k, a := range p.AllowedIPs {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendString(b, a)
		}
		b = append(b, ']')
	}
	if p.Keepalive != 0 {
		b = append(b, `,"keepalive":`...)
		b = strconv.AppendInt(b, int64(p.Keepalive), 10)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string as encoding/json writes it: a
// string of plain printable ASCII as it is, any other through encoding/json
// (its escapes: control characters, quotes, <, >, &, invalid UTF-8...).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
