// Package iptables is the one place wgnet writes iptables text and runs the
// iptables programs: iptables-restore input (tables, chain declarations, rules
// with their comments) built from arguments, iptables-save output read back
// into tables, chains and rules, and the programs run with an argument vector
// and the input on their standard input, never through a shell (an interface
// name or a comment is an argument, never shell text). hostnet (the full
// tunnel's iptables fallback, wgnet's own table where nf_tables does not
// answer) and dockerfw (the host's forward firewall) build on it; live reads
// iptables-save through it.
//
// It imports nothing of wgnet.
package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ErrNoProgram is returned (wrapped) by Run when the program is not installed.
var ErrNoProgram = errors.New("not installed")

// Restore is the family's restore program: iptables-restore, or
// ip6tables-restore with six.
func Restore(six bool) string { return program(six) + "-restore" }

// Save is the family's save program: iptables-save, or ip6tables-save.
func Save(six bool) string { return program(six) + "-save" }

func program(six bool) string {
	if six {
		return "ip6tables"
	}
	return "iptables"
}

// Run runs prog (looked up on PATH) with args, input on its standard input,
// and returns its standard output. A failure names the command and carries
// what the program wrote on its standard error; the output it gave is
// returned with it.
func Run(ctx context.Context, prog string, args []string, input string) ([]byte, error) {
	path, err := exec.LookPath(prog)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prog, ErrNoProgram)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	if input != "" {
		cmd.Stdin = strings.NewReader(input)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", strings.Join(append([]string{prog}, args...), " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Input is the text of one iptables-restore run: tables, each with its chain
// declarations and rules and closed by COMMIT. With `-n` (noflush) the
// tables' other rules stay; a declared user chain is created, or emptied
// when it is there.
type Input struct {
	b    strings.Builder
	open bool // a table is open: String closes it
}

// Table begins table name (raw, mangle, filter, nat), closing the one before.
func (in *Input) Table(name string) {
	in.commit()
	in.b.WriteString("*" + name + "\n")
	in.open = true
}

func (in *Input) commit() {
	if in.open {
		in.b.WriteString("COMMIT\n")
		in.open = false
	}
}

// Chain declares the user chain name (`:NAME - [0:0]`).
func (in *Input) Chain(name string) {
	in.b.WriteString(":" + name + " - [0:0]\n")
}

// Rule adds one command of the table: op is -A, -I, -D, -F or -X, then the
// chain and the rule's arguments, each quoted when iptables-restore would
// otherwise split or unescape it (see Quote).
func (in *Input) Rule(op, chain string, args ...string) {
	in.b.WriteString(op + " " + Quote(chain))
	for _, a := range args {
		in.b.WriteString(" " + Quote(a))
	}
	in.b.WriteString("\n")
}

// Line adds a rule line as it is, for a line iptables-save printed (its
// quoting is already iptables-restore's).
func (in *Input) Line(line string) {
	in.b.WriteString(line + "\n")
}

// String is the input, the last table closed.
func (in *Input) String() string {
	if in.open {
		return in.b.String() + "COMMIT\n"
	}
	return in.b.String()
}

// Comment is the match that carries comment c: `-m comment --comment C`.
func Comment(c string) []string { return []string{"-m", "comment", "--comment", c} }

// Quote returns s as one argument in iptables-restore input: as it is when it
// is a plain word, else in double quotes with `"` and `\` escaped by a
// backslash (iptables-restore's tokenizer undoes both; iptables-save quotes
// the same way).
func Quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"\\'") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// Fields splits a rule line of iptables-save (or of Input) into its
// arguments: at blanks outside double quotes, quotes removed, a backslash
// keeping the character after it.
func Fields(line string) []string {
	var out []string
	var cur strings.Builder
	in, quoted, escaped := false, false, false
	for _, r := range line {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped, in = false, true
		case r == '\\':
			escaped, in = true, true
		case r == '"':
			quoted, in = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// Table is one table of iptables-save output.
type Table struct {
	Name   string
	Chains []Chain
	// Rules are the table's rules in order (of every chain).
	Rules []Rule
}

// Chain is a chain declared in a table: Policy is a base chain's policy
// (ACCEPT, DROP), "" for a user chain.
type Chain struct {
	Name, Policy string
}

// Rule is one `-A CHAIN SPEC` line.
type Rule struct {
	Chain string
	// Spec is the text after "-A CHAIN ", as printed (quotes kept).
	Spec string
	// Line is the whole line.
	Line string
}

// ParseSave reads iptables-save output into its tables, in order. Lines are
// trimmed; comments, COMMIT and anything before the first table are skipped.
func ParseSave(s string) []*Table {
	var out []*Table
	var t *Table
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			t = &Table{Name: line[1:]}
			out = append(out, t)
		case t == nil:
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if len(f) >= 2 {
				c := Chain{Name: f[0]}
				if f[1] != "-" {
					c.Policy = f[1]
				}
				t.Chains = append(t.Chains, c)
			}
		case strings.HasPrefix(line, "-A "):
			chain, spec, _ := strings.Cut(line[3:], " ")
			t.Rules = append(t.Rules, Rule{Chain: chain, Spec: spec, Line: line})
		}
	}
	return out
}
