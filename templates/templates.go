// Package templates holds the text/template templates the generator turns
// into the generated set, embedded in the binary, and the loader that lets
// an admin directory (host configuration template_dir) replace any of them.
//
// Templates are data, escaping is code: every string a template receives is
// a Value, which can only reach the output through one of the escaping
// functions of this package (nixStr, nixAttr, nixPath, nixStrs, nixRelPath,
// html). A template that writes `{{ .Name }}` fails to execute. Sprig's
// hermetic functions are available for logic (not for output of Values).
package templates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"

	"github.com/flyingcircusio/devhost/internal/nixlit"
)

// The templates the generator executes; each is a file <name> in the
// embedded set and may be replaced by <TemplateDir>/<name>.
const (
	// DefaultNix renders default.nix, the index of the set (data: Index).
	DefaultNix = "default.nix.tmpl"
	// ContainerNix renders containers/<name>.nix, the host side of one
	// container (data: Container). It includes VhostNix.
	ContainerNix = "container.nix.tmpl"
	// VhostNix is the nginx virtual host of one container, included by
	// ContainerNix as an attribute set expression (data: Container).
	VhostNix = "vhost.nix.tmpl"
	// ConfigurationNix renders <name>/configuration.nix, the container's own
	// NixOS system (data: Container).
	ConfigurationNix = "configuration.nix.tmpl"
	// IndexHTML renders www/index.html, the public status page (data:
	// Status, which holds nothing private).
	IndexHTML = "index.html.tmpl"
)

// Names lists every template, sorted.
func Names() []string {
	n := []string{DefaultNix, ContainerNix, VhostNix, ConfigurationNix, IndexHTML}
	slices.Sort(n)
	return n
}

//go:embed *.tmpl
var embedded embed.FS

// Set is a parsed set of templates, safe for concurrent use.
type Set struct {
	root *template.Template
	// compiled holds the templates the compiled executor runs (see
	// compile.go); nil in a Reference set.
	compiled map[string]*compiled
	// Sources says where each template came from ("embedded" or a file).
	Sources map[string]string
	// Digest is a hash of every template's text: output rendered with
	// another digest may differ.
	Digest string
}

// Load parses the embedded templates, each replaced by the file of the same
// name in overrideDir when overrideDir is not empty and has one. A file in
// overrideDir that is not a known template is an error (a misspelt override
// would otherwise be ignored silently).
func Load(overrideDir string) (*Set, error) {
	src := map[string][]byte{}
	sources := map[string]string{}
	for _, name := range Names() {
		b, err := embedded.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("embedded template %s: %w", name, err)
		}
		src[name] = b
		sources[name] = "embedded"
	}
	if overrideDir != "" {
		entries, err := os.ReadDir(overrideDir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("template directory %s: %w", overrideDir, err)
		}
		for _, e := range entries {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := filepath.Join(overrideDir, e.Name())
			if _, ok := src[e.Name()]; !ok {
				return nil, fmt.Errorf("template override %s: unknown template; the overridable templates are %s", p, strings.Join(Names(), ", "))
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("template override: %w", err)
			}
			src[e.Name()] = b
			sources[e.Name()] = p
		}
	}
	root := template.New("").Option("missingkey=error").Funcs(FuncMap())
	for _, name := range Names() {
		if _, err := root.New(name).Parse(string(src[name])); err != nil {
			return nil, fmt.Errorf("template %s (%s): %w", name, sources[name], err)
		}
	}
	d := sha256.New()
	for _, name := range Names() {
		fmt.Fprintf(d, "%s %d\n", name, len(src[name]))
		d.Write(src[name])
	}
	return &Set{root: root, compiled: compileSet(root), Sources: sources, Digest: hex.EncodeToString(d.Sum(nil))}, nil
}

// Reference returns the same templates executed by text/template alone,
// the specification of the compiled executor that Execute uses: its output
// is byte for byte that of s. It is for tests and benchmarks.
func (s *Set) Reference() *Set {
	return &Set{root: s.root, Sources: s.Sources, Digest: s.Digest}
}

// Execute runs the template name with data and returns its output.
func (s *Set) Execute(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := s.ExecuteTo(&b, name, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ExecuteTo is Execute into a caller's buffer (the generator reuses them).
func (s *Set) ExecuteTo(b *bytes.Buffer, name string, data any) error {
	if c := s.compiled[name]; c != nil {
		start := b.Len()
		if c.run(b, s.compiled, data) == nil {
			return nil
		}
		// Anything the compiled run could not do as text/template does
		// (an escaper's error included): text/template decides.
		b.Truncate(start)
	}
	t := s.root.Lookup(name)
	if t == nil {
		return fmt.Errorf("template %s: not defined", name)
	}
	if err := t.Execute(b, data); err != nil {
		var ee template.ExecError
		if errors.As(err, &ee) {
			// The usual cause in an edited template: a Value printed
			// directly, which text/template refuses (see Value).
			return fmt.Errorf("template %s (%s): %w (a value must be written through an escaping function: nixStr, nixAttr, nixPath, nixStrs, nixList, html)", name, s.Sources[name], err)
		}
		return fmt.Errorf("template %s (%s): %w", name, s.Sources[name], err)
	}
	return nil
}

// FuncMap is sprig's hermetic text functions plus the escaping functions.
// The escapers are the only functions that accept a Value:
//
//	nixStr     Value   -> "..." Nix string literal
//	nixAttr    Value   -> bare identifier or quoted attribute name
//	nixPath    Value   -> absolute path as a Nix STRING literal
//	nixStrs    []Value -> [ "a" "b" ]
//	nixList    int []Value -> a list, one string per line indented by int
//	           spaces, "]" two spaces less ("[ ]" when empty)
//	nixRelPath Value   -> ./relative/path literal (for imports inside the set)
//	html       Value   -> HTML-escaped text (for element content and quoted attributes)
func FuncMap() template.FuncMap {
	m := sprig.HermeticTxtFuncMap()
	for name, f := range valueEscapers {
		m[name] = f
	}
	m["nixStrs"] = nixStrs
	m["nixList"] = nixList
	return m
}

// valueEscapers are the escaping functions of one Value, by template
// name; both executors call these.
var valueEscapers = map[string]func(Value) (string, error){
	"nixStr":     func(v Value) (string, error) { return nixlit.String(Unwrap(v)) },
	"nixAttr":    func(v Value) (string, error) { return nixlit.AttrName(Unwrap(v)) },
	"nixPath":    func(v Value) (string, error) { return nixlit.Path(Unwrap(v)) },
	"nixRelPath": func(v Value) (string, error) { return nixlit.RelPath(Unwrap(v)) },
	"html":       func(v Value) (string, error) { return html.EscapeString(Unwrap(v)), nil },
}

// nixStrs renders [ "a" "b" ].
func nixStrs(vs []Value) (string, error) {
	ss := make([]string, len(vs))
	for i, v := range vs {
		ss[i] = Unwrap(v)
	}
	return nixlit.StringList(ss)
}

// nixList renders a list of strings one per line: the template writes
// `keys = {{ nixList 10 .SSHKeys }};` on a line indented by 8.
func nixList(indent int, vs []Value) (string, error) {
	if len(vs) == 0 {
		return "[ ]", nil
	}
	if indent < 2 || indent > 64 {
		return "", fmt.Errorf("nixList: indent %d out of range 2..64", indent)
	}
	pad := strings.Repeat(" ", indent)
	var b strings.Builder
	b.WriteString("[\n")
	for _, v := range vs {
		lit, err := nixlit.String(Unwrap(v))
		if err != nil {
			return "", err
		}
		b.WriteString(pad)
		b.WriteString(lit)
		b.WriteByte('\n')
	}
	b.WriteString(pad[2:])
	b.WriteByte(']')
	return b.String(), nil
}
