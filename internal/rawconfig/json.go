package rawconfig

import (
	"sort"
	"strconv"
)

// JSON returns what the reader sees in the shape `devhost debug cfg`
// prints, {"sections": {"<section>": {"<option>": "<value>"}}} with DEFAULT
// merged into every section and not listed itself, keys sorted.
//
// The bytes are exactly those of Python's
// json.dumps(obj, sort_keys=True, ensure_ascii=False), so the output can be
// compared byte for byte with CPython's view of the same file (see
// testdata/configparser_json.py). encoding/json differs from Python (it
// escapes U+2028/U+2029 and writes no blanks after separators), hence the
// hand-written encoder.
func (f *File) JSON() []byte {
	m := f.Map()
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	b := make([]byte, 0, 256)
	b = append(b, `{"sections": {`...)
	for i, name := range names {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendPyString(b, name)
		b = append(b, ": {"...)
		opts := m[name]
		keys := make([]string, 0, len(opts))
		for k := range opts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for j, k := range keys {
			if j > 0 {
				b = append(b, ", "...)
			}
			b = appendPyString(b, k)
			b = append(b, ": "...)
			b = appendPyString(b, opts[k])
		}
		b = append(b, '}')
	}
	b = append(b, "}}"...)
	return b
}

// ErrorJSON returns {"error": "<class>"} as Python's json.dumps writes it.
func ErrorJSON(pythonClass string) []byte {
	b := append([]byte(nil), `{"error": `...)
	b = appendPyString(b, pythonClass)
	return append(b, '}')
}

// appendPyString appends s as a JSON string the way Python's json module
// does with ensure_ascii=False: '"', '\\', \b \f \n \r \t get short
// escapes, other characters below U+0020 \u00XX, everything else is copied.
//
// Python sorts keys by code point; sort.Strings sorts UTF-8 bytes, which is
// the same order.
func appendPyString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, `\"`...)
		case '\\':
			b = append(b, `\\`...)
		case '\b':
			b = append(b, `\b`...)
		case '\f':
			b = append(b, `\f`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			b = append(b, `\u00`...)
			h := strconv.FormatInt(int64(c), 16)
			if len(h) < 2 {
				b = append(b, '0')
			}
			b = append(b, h...)
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
