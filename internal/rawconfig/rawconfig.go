// Package rawconfig reads INI files exactly as Python's
// configparser.RawConfigParser does with case-sensitive option names
// (optionxform = str), which is how batou reads environment.cfg.
//
// The aim is bug-for-bug agreement with CPython: the same sections, options
// and values for every file CPython accepts, and an error of the same kind
// (named by the Python exception class) for every file it rejects. Unlike
// CPython, every section, option and value line keeps its source range, so
// later validation can point at the exact line of one item of a list.
package rawconfig

import (
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
}

// Section is one [name] section.
type Section struct {
	Name string
	// Range covers the header line's "[name]".
	Range hcl.Range
	// NameRange covers just the name inside the brackets.
	NameRange hcl.Range
	// Options in file order; DEFAULT options are not copied in here, use Get
	// or Merged for the view CPython gives.
	Options []*Option
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
	// PythonClass is the name of the exception class CPython raises:
	// "DuplicateSectionError", "DuplicateOptionError",
	// "MissingSectionHeaderError" or "ParsingError".
	PythonClass string
	Summary     string
	Detail      string
	Range       hcl.Range
}
