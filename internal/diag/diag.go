// Package diag carries positioned diagnostics from the packages that find
// problems (batou environments, HCL files, registry entries) to the command
// line, which alone decides how to show them.
//
// Diagnostics are hcl.Diagnostics so that every source of errors is printed
// the same way, with hcl.NewDiagnosticTextWriter: file:line:col, a source
// snippet and a hint. Non-HCL files (environment.cfg, provision.nix) take part
// by registering their bytes under the file name used in the ranges.
package diag

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Error is an error made of diagnostics about the user's input. Returning it
// from a command exits with status 1 and prints every diagnostic.
type Error struct {
	Diags hcl.Diagnostics
	// Files maps the filenames used in Diags' ranges to their contents, so
	// that snippets can be shown. Missing files just print without snippet.
	Files map[string][]byte
}

// NewError returns an *Error for diags, or nil when diags has no error.
func NewError(diags hcl.Diagnostics, files map[string][]byte) error {
	if !diags.HasErrors() {
		return nil
	}
	return &Error{Diags: diags, Files: files}
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, d := range e.Diags {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(Line(d))
	}
	return b.String()
}

// Line formats one diagnostic as "file:line:col: error: summary; detail",
// the shape compilers use and editors understand.
func Line(d *hcl.Diagnostic) string {
	sev := "error"
	if d.Severity == hcl.DiagWarning {
		sev = "warning"
	}
	var b strings.Builder
	if d.Subject != nil {
		fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
	}
	fmt.Fprintf(&b, "%s: %s", sev, d.Summary)
	if d.Detail != "" {
		fmt.Fprintf(&b, " (%s)", d.Detail)
	}
	return b.String()
}

// Write prints diags for people: one "file:line:col: severity: summary" line
// each, followed by HCL's snippet rendering when the file is known.
func Write(w io.Writer, diags hcl.Diagnostics, files map[string][]byte, color bool) error {
	hf := make(map[string]*hcl.File, len(files))
	for name, src := range files {
		hf[name] = &hcl.File{Bytes: src}
	}
	tw := hcl.NewDiagnosticTextWriter(w, hf, 100, color)
	sorted := append(hcl.Diagnostics(nil), diags...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i].Subject, sorted[j].Subject
		if a == nil || b == nil {
			return a != nil && b == nil
		}
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
	for _, d := range sorted {
		if _, err := fmt.Fprintln(w, Line(d)); err != nil {
			return err
		}
		if d.Subject != nil && hf[d.Subject.Filename] != nil {
			if err := tw.WriteDiagnostic(d); err != nil {
				return err
			}
		}
	}
	return nil
}
