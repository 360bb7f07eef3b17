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
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

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
		fmt.Fprintf(&b, "%s:%d:%d: ", visible(d.Subject.Filename), d.Subject.Start.Line, d.Subject.Start.Column)
	}
	fmt.Fprintf(&b, "%s: %s", sev, visible(d.Summary))
	if d.Detail != "" {
		fmt.Fprintf(&b, " (%s)", visible(d.Detail))
	}
	return b.String()
}

// Write prints diags for people, the way compilers do: one
// "file:line:col: severity: summary" line each, then the source line with
// the range underlined when the file's bytes are known, then the detail as a
// hint. Diagnostics are sorted by file and position. Control characters of
// the input (file names, quoted values, source lines, a command's output)
// are shown as U+FFFD, so a file cannot drive the terminal.
func Write(w io.Writer, diags hcl.Diagnostics, files map[string][]byte, color bool) error {
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
	bold, red, yellow, reset := "", "", "", ""
	if color {
		bold, red, yellow, reset = "\x1b[1m", "\x1b[31m", "\x1b[33m", "\x1b[0m"
	}
	var b strings.Builder
	for _, d := range sorted {
		sev, c := "error", red
		if d.Severity == hcl.DiagWarning {
			sev, c = "warning", yellow
		}
		if d.Subject != nil {
			fmt.Fprintf(&b, "%s%s:%d:%d:%s ", bold, visible(d.Subject.Filename), d.Subject.Start.Line, d.Subject.Start.Column, reset)
		}
		fmt.Fprintf(&b, "%s%s:%s %s\n", c, sev, reset, visible(d.Summary))
		if d.Subject != nil {
			snippet(&b, *d.Subject, files[d.Subject.Filename])
		}
		if d.Detail != "" {
			fmt.Fprintf(&b, "  hint: %s\n", visible(d.Detail))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// snippetWidth bounds the part of a source line a snippet shows: a line of
// 200,000 brackets is shown around the range, not in full.
const snippetWidth = 120

// snippet writes the source line of r and a caret line under the range.
// A long line is cut to snippetWidth bytes around the range's start, with
// "…" where something was left out.
func snippet(b *strings.Builder, r hcl.Range, src []byte) {
	if src == nil || r.Start.Byte < 0 || r.Start.Byte > len(src) {
		return
	}
	lineStart := bytes.LastIndexByte(src[:r.Start.Byte], '\n') + 1
	lineEnd := len(src)
	if i := bytes.IndexByte(src[r.Start.Byte:], '\n'); i >= 0 {
		lineEnd = r.Start.Byte + i
	}
	from, to, cutHead, cutTail := lineStart, lineEnd, "", ""
	if lineEnd-lineStart > snippetWidth {
		from = max(lineStart, r.Start.Byte-snippetWidth/2)
		for from > lineStart && !utf8.RuneStart(src[from]) {
			from--
		}
		to = min(lineEnd, from+snippetWidth)
		for to < lineEnd && !utf8.RuneStart(src[to]) {
			to++
		}
		if from > lineStart {
			cutHead = "…"
		}
		if to < lineEnd {
			cutTail = "…"
		}
	}
	line := strings.TrimRight(string(src[from:to]), "\r")
	fmt.Fprintf(b, "  %4d: %s%s%s\n", r.Start.Line, cutHead, visible(line), cutTail)
	end := r.End.Byte
	if end <= r.Start.Byte || end > from+len(line) {
		end = from + len(line)
	}
	// Keep tabs so the carets line up under the same characters.
	var pad strings.Builder
	if cutHead != "" {
		pad.WriteByte(' ')
	}
	for _, ch := range string(src[from:r.Start.Byte]) {
		if ch == '\t' {
			pad.WriteByte('\t')
		} else {
			pad.WriteByte(' ')
		}
	}
	n := utf8.RuneCount(src[r.Start.Byte:max(end, r.Start.Byte)])
	fmt.Fprintf(b, "        %s%s\n", pad.String(), strings.Repeat("^", max(n, 1)))
}

// Visible returns s with its control characters other than tab and newline
// (C0, DEL, C1: escape sequences a file or a command's output could use to
// drive the terminal) replaced by U+FFFD, one character each so carets stay
// aligned; so are bytes that are not UTF-8. Commands use it for values from
// the user's files that they print for people.
func Visible(s string) string { return visible(s) }

func visible(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, isControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return utf8.RuneError
		}
		return r
	}, s)
}

func isControl(r rune) bool {
	return r != '\t' && r != '\n' && (r < 0x20 || r >= 0x7f && r < 0xa0)
}
