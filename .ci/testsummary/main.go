// Command testsummary reads `go test -json` on stdin and prints what CI needs
// to see: each package's result, the output of every failed test, every skipped
// test with its reason, and a closing "tests: N passed, N failed, N skipped"
// line. Under WGNET_TEST_STRICT=1 a test skipped for lack of root or a tool (its
// reason starts with "needs") counts as failed: CI has both. It exits 1 when
// anything failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	strict := os.Getenv("WGNET_TEST_STRICT") == "1"
	out := map[string]*strings.Builder{} // package/test → output
	var passed, failed, skipped int
	var failures, skips, pkgs []string
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Println(sc.Text()) // build output and the like
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			if out[key] == nil {
				out[key] = &strings.Builder{}
			}
			out[key].WriteString(e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" {
				pkgs = append(pkgs, fmt.Sprintf("%-4s %s (%.1fs)", strings.ToUpper(e.Action), e.Package, e.Elapsed))
				if e.Action == "fail" && out[key] != nil {
					failures = append(failures, key+"\n"+out[key].String())
				}
				continue
			}
			switch e.Action {
			case "pass":
				passed++
			case "fail":
				failed++
				failures = append(failures, key+"\n"+text(out[key]))
			case "skip":
				reason := skipReason(text(out[key]))
				if strict && strings.HasPrefix(reason, "needs") {
					failed++
					failures = append(failures, key+": skipped under WGNET_TEST_STRICT=1: "+reason)
					continue
				}
				skipped++
				skips = append(skips, fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason))
			}
		}
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		fmt.Println(p)
	}
	for _, f := range failures {
		fmt.Println("--- FAIL:", f)
	}
	if len(skips) > 0 {
		fmt.Printf("skipped (%d):\n", len(skips))
		for _, s := range skips {
			fmt.Println("  " + s)
		}
	}
	fmt.Printf("tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || len(failures) > 0 {
		os.Exit(1)
	}
}

func text(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	return b.String()
}

// skipReason is the message a test gave t.Skip: the last "file.go:N: message"
// line of its output, or its last non-empty line.
func skipReason(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if file, msg, ok := strings.Cut(l, ": "); ok && strings.Contains(file, ".go:") && !strings.Contains(file, " ") {
			return msg
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if r := strings.TrimSpace(lines[i]); r != "" {
			return r
		}
	}
	return "(no reason given)"
}
