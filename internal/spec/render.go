package spec

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// layout keeps what yaml.v3 forgets between parsing and encoding a file: blank
// lines between entries and the column of trailing comments. Bytes puts them
// back, so an edit changes only the lines it is about.
type layout struct {
	blank map[*yaml.Node]bool // a blank line comes before the node and its head comment
	col   map[*yaml.Node]int  // 0-based column of the node's line comment
}

// recordLayout notes the blank lines and comment columns of src, parsed as doc.
func recordLayout(doc *yaml.Node, src []byte) layout {
	l := layout{blank: map[*yaml.Node]bool{}, col: map[*yaml.Node]int{}}
	lines := strings.Split(strings.ReplaceAll(string(src), "\r\n", "\n"), "\n")
	blankAt := func(line int) bool { // 1-based
		return line >= 1 && line <= len(lines) && strings.TrimSpace(lines[line-1]) == ""
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.LineComment != "" && n.Line >= 1 && n.Line <= len(lines) {
			if i := strings.LastIndex(lines[n.Line-1], n.LineComment); i > 0 {
				l.col[n] = i
			}
		}
		for i, c := range n.Content {
			entry := n.Kind == yaml.SequenceNode || (n.Kind == yaml.MappingNode && i%2 == 0)
			if entry && blankAt(c.Line-commentLines(c.HeadComment)-1) {
				l.blank[c] = true
			}
			walk(c)
		}
	}
	walk(doc)
	return l
}

func commentLines(c string) int {
	if c == "" {
		return 0
	}
	return strings.Count(c, "\n") + 1
}

// Bytes renders the document as YAML (2-space indent), without validating it.
func (d *Document) Bytes() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(d.doc); err != nil {
		return nil, fmt.Errorf("render %s: %w", d.path, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render %s: %w", d.path, err)
	}
	return d.layout.apply(d.doc, buf.Bytes()), nil
}

// apply puts the recorded layout back into out, the encoding of doc. It
// re-parses out to learn where each node of doc landed, walking both trees side
// by side; where they differ it leaves out as it is.
func (l layout) apply(doc *yaml.Node, out []byte) []byte {
	var doc2 yaml.Node
	if u := unquoteColons(out); !bytes.Equal(u, out) {
		if err := yaml.Unmarshal(u, &doc2); err == nil && sameTree(doc, &doc2) {
			out = u
		}
	}
	if len(l.blank) == 0 && len(l.col) == 0 {
		return out
	}
	doc2 = yaml.Node{}
	if err := yaml.Unmarshal(out, &doc2); err != nil {
		return out
	}
	lines := strings.Split(string(out), "\n")
	blankBefore := map[int]bool{} // 1-based line numbers of out
	var walk func(a, b *yaml.Node)
	walk = func(a, b *yaml.Node) {
		if c, ok := l.col[a]; ok && b.LineComment == a.LineComment && b.Line >= 1 && b.Line <= len(lines) {
			lines[b.Line-1] = alignComment(lines[b.Line-1], a.LineComment, c)
		}
		if a.Kind != b.Kind || len(a.Content) != len(b.Content) {
			return
		}
		for i := range a.Content {
			if l.blank[a.Content[i]] {
				blankBefore[b.Content[i].Line-commentLines(b.Content[i].HeadComment)] = true
			}
			walk(a.Content[i], b.Content[i])
		}
	}
	walk(doc, &doc2)
	var res strings.Builder
	for i, line := range lines {
		if blankBefore[i+1] && i > 0 && strings.TrimSpace(lines[i-1]) != "" {
			res.WriteByte('\n')
		}
		res.WriteString(line)
		if i < len(lines)-1 {
			res.WriteByte('\n')
		}
	}
	return []byte(res.String())
}

// quotedColon matches a single-quoted scalar with a colon inside a flow list or
// mapping ("[a, 'fd00::1']", "{endpoint: '1.2.3.4:51820'}"). yaml.v3 quotes
// every such scalar, though YAML reads most of them fine without quotes, as
// users write them. The colon must not end the scalar ("a:" before "]" would be
// a key); sameTree checks that unquoting changed no value.
var quotedColon = regexp.MustCompile(`([\[{,] ?|: )'([A-Za-z0-9_.][A-Za-z0-9_.-]*:[A-Za-z0-9_.:/-]*[A-Za-z0-9_./-])'([,\]}])`)

func unquoteColons(out []byte) []byte {
	// Adjacent items share the separator a pass consumes: repeat until stable.
	for range 8 {
		next := quotedColon.ReplaceAll(out, []byte("$1$2$3"))
		if bytes.Equal(next, out) {
			break
		}
		out = next
	}
	return out
}

// sameTree reports whether a and b hold the same values (ignoring style, lines
// and comments).
func sameTree(a, b *yaml.Node) bool {
	if a.Kind != b.Kind || len(a.Content) != len(b.Content) {
		return false
	}
	if a.Kind == yaml.ScalarNode && (a.Value != b.Value || a.ShortTag() != b.ShortTag()) {
		return false
	}
	for i := range a.Content {
		if !sameTree(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}

// alignComment moves the trailing comment of line to column col when the content
// before it is short enough, as the user had aligned it.
func alignComment(line, comment string, col int) string {
	if !strings.HasSuffix(line, comment) {
		return line
	}
	content := strings.TrimRight(strings.TrimSuffix(line, comment), " ")
	if content == "" || len(content)+1 > col {
		return line
	}
	return content + strings.Repeat(" ", col-len(content)) + comment
}
