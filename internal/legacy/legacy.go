// Package legacy reads what the container devhost devhost replaces knew
// about its containers, so `devhost import-legacy` can register them: one
// JSON file per container in /etc/devhost (and the older /etc/devserver),
// {"name": …, "ip": …, "aliases": […], "enabled": …}, written by its
// fc-build-dev-container, and each container's channel from the
// enc.json the old script left in the container
// (<containers>/<name>/etc/nixos/enc.json, parameters.environment_url).
package legacy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/flyingcircusio/devhost/internal/names"
)

// DefaultDirs are where the old devhost kept its records.
var DefaultDirs = []string{"/etc/devhost", "/etc/devserver"}

// DefaultContainersDir is where the old devhost's imperative containers
// lived (nixos-container's directory before NixOS 22.05).
const DefaultContainersDir = "/var/lib/containers"

// Record is one old container.
type Record struct {
	Name    string
	IP      netip.Addr // invalid when the record has none
	Aliases []string
	Enabled bool
	// File is the record's path; ModTime its modification time, which the
	// old cleanup took as the last deployment.
	File    string
	ModTime time.Time
}

// raw is the file's JSON.
type raw struct {
	Name    *string   `json:"name"`
	IP      *string   `json:"ip"`
	Aliases *[]string `json:"aliases"`
	Enabled *bool     `json:"enabled"`
}

// Read parses every *.json in dirs (a missing directory is empty). It
// returns the valid records sorted by name, and diagnostics for the rest,
// with the files' contents for snippets. A name recorded twice is kept
// once (the first directory wins, as the old role listed /etc/devhost
// first).
func Read(dirs []string) ([]Record, hcl.Diagnostics, map[string][]byte) {
	var (
		out   []Record
		diags hcl.Diagnostics
		files = map[string][]byte{}
		seen  = map[string]string{}
	)
	for _, dir := range dirs {
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read " + dir, Detail: err.Error()})
			continue
		}
		for _, e := range ents {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			path := filepath.Join(dir, e.Name())
			rec, d, src := readOne(path)
			if src != nil && d.HasErrors() {
				files[path] = src
			}
			diags = append(diags, d...)
			if rec == nil {
				continue
			}
			if first, dup := seen[rec.Name]; dup {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning,
					Summary: fmt.Sprintf("Container %q recorded twice", rec.Name),
					Detail:  fmt.Sprintf("%s is ignored; %s is imported.", path, first)})
				continue
			}
			seen[rec.Name] = path
			out = append(out, *rec)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, diags, files
}

func readOne(path string) (*Record, hcl.Diagnostics, []byte) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read " + path, Detail: err.Error()}}, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read " + path, Detail: err.Error()}}, nil
	}
	bad := func(off int, summary, detail string) hcl.Diagnostics {
		r := rangeAt(path, src, off)
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r}}
	}
	var r raw
	dec := json.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&r); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, bad(int(se.Offset)-1, "Invalid JSON", se.Error()+"; the old devhost wrote {\"name\": …, \"ip\": …, \"aliases\": […], \"enabled\": …}."), src
		case errors.As(err, &te):
			return nil, bad(int(te.Offset)-1, "Invalid record", fmt.Sprintf("%s must be a %s.", te.Field, te.Type)), src
		default:
			return nil, bad(0, "Invalid record", err.Error()), src
		}
	}
	base := strings.TrimSuffix(filepath.Base(path), ".json")
	rec := &Record{File: path, ModTime: fi.ModTime().UTC(), Enabled: true}
	rec.Name = base // the file is named after the container
	if r.Name != nil {
		rec.Name = *r.Name
	}
	var diags hcl.Diagnostics
	if err := names.Container(rec.Name); err != nil {
		diags = append(diags, bad(offsetOf(src, "name"), "Invalid container name", err.Error()+"; rename the container with devhost ensure instead of importing it.")...)
		return nil, diags, src
	}
	if r.IP != nil && *r.IP != "" {
		a, err := netip.ParseAddr(*r.IP)
		if err != nil {
			return nil, bad(offsetOf(src, "ip"), "Invalid ip", err.Error()), src
		}
		rec.IP = a
	}
	if r.Aliases != nil {
		for _, a := range *r.Aliases {
			a = strings.TrimSpace(a)
			if a == "" { // split(" ") of no aliases gave [""]
				continue
			}
			if err := names.Alias(a); err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Alias dropped",
					Detail: fmt.Sprintf("%s: %v; the container is imported without it.", path, err)})
				continue
			}
			if !contains(rec.Aliases, a) {
				rec.Aliases = append(rec.Aliases, a)
			}
		}
	}
	if r.Enabled != nil {
		rec.Enabled = *r.Enabled
	}
	return rec, diags, src
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// offsetOf finds the "key" of a JSON object member, for a diagnostic.
func offsetOf(src []byte, key string) int {
	i := bytes.Index(src, []byte(`"`+key+`"`))
	if i < 0 {
		return 0
	}
	return i
}

// rangeAt is a one-byte range at byte offset off.
func rangeAt(name string, src []byte, off int) hcl.Range {
	off = max(0, min(off, len(src)))
	line, col := 1, 1
	for _, b := range src[:off] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	end := min(off+1, len(src))
	return hcl.Range{Filename: name, Start: hcl.Pos{Line: line, Column: col, Byte: off}, End: hcl.Pos{Line: line, Column: col + end - off, Byte: end}}
}

// Channel is the channel URL the old devhost recorded in the container
// (enc.json's parameters.environment_url); ok is false when there is none.
//
// The file lies in the container's root directory, which the container's
// root controls, and import-legacy runs as root: links are resolved inside
// the container's root only (os.Root), and only a regular file of at most
// 1 MiB is read (O_NONBLOCK: a FIFO must not hang the import).
func Channel(containersDir, name string) (string, bool) {
	root, err := os.OpenRoot(filepath.Join(containersDir, name))
	if err != nil {
		return "", false
	}
	defer func() { _ = root.Close() }()
	f, err := root.OpenFile(filepath.Join("etc", "nixos", "enc.json"), os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return "", false
	}
	defer func() { _ = f.Close() }()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	b, err := io.ReadAll(io.LimitReader(f, maxEnc+1))
	if err != nil || len(b) > maxEnc {
		return "", false
	}
	var enc struct {
		Parameters struct {
			EnvironmentURL string `json:"environment_url"`
		} `json:"parameters"`
	}
	if json.Unmarshal(b, &enc) != nil || enc.Parameters.EnvironmentURL == "" {
		return "", false
	}
	return enc.Parameters.EnvironmentURL, true
}

// maxEnc bounds enc.json (the old script wrote a few hundred bytes).
const maxEnc = 1 << 20
