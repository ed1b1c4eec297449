// Package diag is wgnet's one diagnostic type: a problem found in an input, with
// where it is (file and line), a stable code, a severity and a message; and the one
// table of every code wgnet reports (Codes). spec, wgconf, check and importer
// produce Diagnostics; the command prints them. It is pure and imports nothing of
// wgnet, so that every producer can use it.
package diag

import (
	"errors"
	"strconv"
)

// Severity says whether a diagnostic makes its input unusable (Error) or is a
// risk worth a look (Warning). Each code has one fixed severity (Codes).
type Severity string

// Severities.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// String returns "error" or "warning".
func (s Severity) String() string { return string(s) }

// Diagnostic is one problem, located where its fix belongs. Its JSON form is
// what `wgnet check -o json` prints.
type Diagnostic struct {
	File     string   `json:"file"`
	Line     int      `json:"line"` // 1-based; 0 = the whole file, or not known
	Severity Severity `json:"severity"`
	// Code is a stable identifier of the kind of problem ("spec-endpoint",
	// "dup-peer"), for scripts and for documentation; never reused or renamed.
	Code string `json:"code"`
	// Message is the whole message, without file, line, severity or code.
	Message string `json:"message"`
}

// String formats d as "FILE:LINE: SEVERITY: CODE: MESSAGE", the form editors and
// CI annotate; without a line it is "FILE: SEVERITY: CODE: MESSAGE".
func (d Diagnostic) String() string {
	if d.Line > 0 {
		return d.File + ":" + strconv.Itoa(d.Line) + ": " + string(d.Severity) + ": " + d.Code + ": " + d.Message
	}
	return d.File + ": " + string(d.Severity) + ": " + d.Code + ": " + d.Message
}

// Located formats d as "FILE:LINE: MESSAGE", leaving out what is unknown
// ("FILE: MESSAGE", "line LINE: MESSAGE", "MESSAGE"): the form of an error that
// stops a command, where severity and code would be noise.
func (d Diagnostic) Located() string {
	switch {
	case d.File != "" && d.Line > 0:
		return d.File + ":" + strconv.Itoa(d.Line) + ": " + d.Message
	case d.File != "":
		return d.File + ": " + d.Message
	case d.Line > 0:
		return "line " + strconv.Itoa(d.Line) + ": " + d.Message
	}
	return d.Message
}

// Failure carries a Diagnostic as a Go error; its message is d.Located().
// Functions that fail on bad input (spec.Parse, wgconf.Parse) join one Failure
// per problem (List.Err); FromError takes them apart again.
type Failure struct{ Diagnostic }

// Error returns f.Located().
func (f Failure) Error() string { return f.Located() }

// List is the diagnostics of one input or one run.
type List []Diagnostic

// Errors returns the diagnostics of severity Error, in order.
func (l List) Errors() List { return l.filter(Error) }

// Warnings returns the diagnostics of severity Warning, in order.
func (l List) Warnings() List { return l.filter(Warning) }

func (l List) filter(s Severity) List {
	var out List
	for _, d := range l {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// Count returns the number of errors and of warnings in l.
func (l List) Count() (errors, warnings int) {
	for _, d := range l {
		if d.Severity == Error {
			errors++
		} else {
			warnings++
		}
	}
	return errors, warnings
}

// Err joins (errors.Join) one Failure per diagnostic of severity Error, in order;
// nil when there is none. Warnings never make an error.
func (l List) Err() error {
	var errs []error
	for _, d := range l {
		if d.Severity == Error {
			errs = append(errs, Failure{d})
		}
	}
	return errors.Join(errs...)
}

// FromError returns the diagnostics inside err (a Failure, or errors joined or
// wrapped around Failures, as List.Err returns), in order. Errors of other types
// are skipped.
func FromError(err error) List {
	switch x := err.(type) {
	case Failure:
		return List{x.Diagnostic}
	case *Failure:
		return List{x.Diagnostic}
	case interface{ Unwrap() []error }:
		var out List
		for _, e := range x.Unwrap() {
			out = append(out, FromError(e)...)
		}
		return out
	case interface{ Unwrap() error }:
		return FromError(x.Unwrap())
	}
	return nil
}
