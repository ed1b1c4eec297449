// Package layering holds the one table of which wgnet package may import which
// (rules.go) and the test that enforces it against the code, so the rules in
// the package docs and docs/architecture.md cannot drift from the imports. It
// has no code of its own that anything imports.
package layering
