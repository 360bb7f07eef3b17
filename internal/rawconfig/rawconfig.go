// Package rawconfig reads INI files exactly as Python's
// configparser.RawConfigParser does with case-sensitive option names
// (optionxform = str), which is how batou reads environment.cfg.
//
// The aim is bug-for-bug agreement with CPython: the same sections, options
// and values for every file CPython accepts, and an error of the same kind
// (named by the Python exception class) for every file it rejects. Unlike
// CPython, every section, option and value line keeps its source range, so
// later validation can point at the exact line of one item of a list.
//
// The reference is CPython 3.11's Lib/configparser.py as batou calls it
// (RawConfigParser().read(path), a UTF-8 locale). differential_test.go,
// the fuzz targets and generated_test.go compare Parse with the python3 on
// PATH; testdata/configparser_json.py is the Python side.
package rawconfig

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// DefaultSection is the section whose options appear in every other section.
const DefaultSection = "DEFAULT"

// File is a parsed configuration file.
type File struct {
	Filename string
	// Sections in file order, without DEFAULT.
	Sections []*Section
	// Defaults holds the DEFAULT section's options (never nil).
	Defaults *Section

	// index maps section names once a file has many sections.
	index map[string]*Section
}

// Section is one [name] section.
type Section struct {
	Name string
	// Range covers the header line's "[name]" (anything after the last ']'
	// on the line is ignored, as CPython does). For DEFAULT it is the first
	// [DEFAULT] header, or the zero Range when the file has none.
	Range hcl.Range
	// NameRange covers just the name inside the brackets.
	NameRange hcl.Range
	// Options in file order; DEFAULT options are not copied in here, use Get
	// or Merged for the view CPython gives.
	Options []*Option

	// defaults is the file's DEFAULT section (nil for DEFAULT itself), the
	// fallback of Get.
	defaults *Section
	// seen is set on DEFAULT once a [DEFAULT] header was read.
	seen bool
	// index maps option names once a section has many options.
	index map[string]*Option
}

// Option is one option of a section.
type Option struct {
	Name      string
	NameRange hcl.Range
	// HasValue is false for a key without delimiter (allow_no_value), whose
	// Python value is None. RawConfigParser's default allow_no_value=False
	// rejects those, so with the default parser HasValue is always true.
	HasValue bool
	// Value is the final value as CPython returns it: continuation lines
	// joined with "\n", trailing blank lines removed.
	Value string
	// Lines are the value's lines as they make up Value (first line after
	// the delimiter, then each continuation line), each with its own range.
	// Blank lines kept inside the value have an empty Text.
	Lines []ValueLine
}

// ValueLine is one line of a (possibly continued) value.
type ValueLine struct {
	Text  string
	Range hcl.Range
}

// Error is a file CPython's parser rejects.
type Error struct {
	// PythonClass is the name of the exception class batou fails with:
	// "DuplicateSectionError", "DuplicateOptionError",
	// "MissingSectionHeaderError", "ParsingError" (configparser) or
	// "UnicodeDecodeError" (the file is not UTF-8).
	PythonClass string
	Summary     string
	Detail      string
	// Range is the offending line (for duplicates: the repeated name).
	Range hcl.Range
	// Other holds related places: for a ParsingError every further line
	// CPython could not parse (it reports them all at once), for a
	// duplicate the first occurrence.
	Other []hcl.Range
	// otherMsgs are the messages for Other's lines of a ParsingError.
	otherMsgs []lineMessage
}

type lineMessage struct{ summary, detail string }

// Section returns the section called name, or nil. Section(DefaultSection)
// returns the DEFAULT section (empty when the file has none).
func (f *File) Section(name string) *Section {
	if name == DefaultSection {
		return f.Defaults
	}
	if f.index != nil {
		return f.index[name]
	}
	for _, s := range f.Sections {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Merged returns the options of section name as CPython's get/options see
// them: the section's own options in file order, then the DEFAULT options
// the section does not override (the order of RawConfigParser.options). It
// returns nil when there is no such section.
func (f *File) Merged(name string) []*Option {
	s := f.Section(name)
	if s == nil {
		return nil
	}
	out := make([]*Option, 0, len(s.Options)+len(f.Defaults.Options))
	out = append(out, s.Options...)
	if s == f.Defaults {
		return out
	}
	for _, o := range f.Defaults.Options {
		if s.lookup(o.Name) == nil {
			out = append(out, o)
		}
	}
	return out
}

// Map returns every section but DEFAULT with the DEFAULT values merged in,
// the shape `devhost debug cfg` prints.
func (f *File) Map() map[string]map[string]string {
	out := make(map[string]map[string]string, len(f.Sections))
	for _, s := range f.Sections {
		m := make(map[string]string, len(s.Options)+len(f.Defaults.Options))
		for _, o := range f.Defaults.Options {
			m[o.Name] = o.Value
		}
		for _, o := range s.Options {
			m[o.Name] = o.Value
		}
		out[s.Name] = m
	}
	return out
}

// Span covers the whole option: from its name to the end of its last
// value line.
func (o *Option) Span() hcl.Range {
	return hcl.Range{Filename: o.NameRange.Filename, Start: o.NameRange.Start, End: o.Lines[len(o.Lines)-1].Range.End}
}

// Get returns the option called name, falling back to DEFAULT like
// RawConfigParser.get.
func (s *Section) Get(name string) (*Option, bool) {
	if o := s.lookup(name); o != nil {
		return o, true
	}
	if s.defaults != nil {
		if o := s.defaults.lookup(name); o != nil {
			return o, true
		}
	}
	return nil, false
}

// lookup finds an option of s itself.
func (s *Section) lookup(name string) *Option {
	if s.index != nil {
		return s.index[name]
	}
	for _, o := range s.Options {
		if o.Name == name {
			return o
		}
	}
	return nil
}

// indexAdd records o (already appended to s.Options) in the name index,
// building the index once the section is large so duplicate checks stay
// linear in the file size.
func (s *Section) indexAdd(o *Option) {
	if s.index != nil {
		s.index[o.Name] = o
	} else if len(s.Options) > indexThreshold {
		s.index = make(map[string]*Option, 2*len(s.Options))
		for _, o := range s.Options {
			s.index[o.Name] = o
		}
	}
}

// Error formats e as "file:line:col: summary (PythonClass)".
func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s (Python: %s)", e.Range.Filename, e.Range.Start.Line, e.Range.Start.Column, e.Summary, e.PythonClass)
}

// Diagnostic returns e as one error diagnostic on its main range.
func (e *Error) Diagnostic() *hcl.Diagnostic {
	r := e.Range
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  e.Summary,
		Detail:   e.Detail + " [Python: " + e.PythonClass + "]",
		Subject:  &r,
	}
}

// Diagnostics returns e as diagnostics: the main one, and for a
// ParsingError one more for every further line CPython could not parse.
func (e *Error) Diagnostics() hcl.Diagnostics {
	diags := hcl.Diagnostics{e.Diagnostic()}
	if e.PythonClass != "ParsingError" {
		return diags
	}
	for i, r := range e.Other {
		d := *diags[0]
		if i < len(e.otherMsgs) {
			d.Summary = e.otherMsgs[i].summary
			d.Detail = e.otherMsgs[i].detail + " [Python: " + e.PythonClass + "]"
		}
		d.Subject = &r
		diags = append(diags, &d)
	}
	return diags
}

// SnippetSource returns src for HCL's snippet writer (the Files of a
// diag.Error): HCL splits lines at "\n" only, so a lone "\r", which ends a
// line for CPython, is turned into "\n". Byte offsets stay the same, so
// the ranges Parse returns still apply. src itself is never changed.
func SnippetSource(src []byte) []byte {
	var out []byte
	for i, c := range src {
		if c == '\r' && (i+1 == len(src) || src[i+1] != '\n') {
			if out == nil {
				out = append([]byte(nil), src...)
			}
			out[i] = '\n'
		}
	}
	if out == nil {
		return src
	}
	return out
}
