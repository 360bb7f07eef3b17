package generator

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/templates"
)

// The pieces below let a caller keep a written set up to date without
// rendering every container: a container's own files depend only on it and
// the host configuration, the index only on the containers' names, and the
// status page only on StatusRows. Generate renders through the same code,
// so a set patched piece by piece is byte for byte the set Generate gives.

// StatusRow is what the status page shows of one container.
type StatusRow struct {
	Name      string   `json:"name"`
	State     string   `json:"state"`
	URLs      []string `json:"urls"`
	Protected bool     `json:"protected,omitempty"`
}

// Equal reports whether the status page shows r and o alike.
func (r StatusRow) Equal(o StatusRow) bool {
	return r.Name == o.Name && r.State == o.State && r.Protected == o.Protected && slices.Equal(r.URLs, o.URLs)
}

// Status is the status page row of c.
func Status(cfg *hostconfig.Config, c *registry.Container) StatusRow {
	_, urls := containerURLs(cfg, c)
	return StatusRow{Name: c.Name, State: string(c.State), URLs: urls, Protected: c.ProtectUser != ""}
}

// GenerateStatus renders the status page (StatusFile) of rows, in any
// order.
func GenerateStatus(cfg *hostconfig.Config, rows []StatusRow, t *templates.Set) ([]byte, error) {
	sorted := slices.Clone(rows)
	slices.SortFunc(sorted, func(a, b StatusRow) int { return strings.Compare(a.Name, b.Name) })
	s := &templates.Status{PublicAddress: templates.V(cfg.PublicAddress), Containers: make([]templates.StatusContainer, len(sorted))}
	for i, r := range sorted {
		s.Containers[i] = templates.StatusContainer{Name: templates.V(r.Name), State: templates.V(r.State), URLs: templates.Vs(r.URLs), Protected: r.Protected}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTo(&buf, templates.IndexHTML, s); err != nil {
		return nil, fmt.Errorf("generate %s: %w", StatusFile, err)
	}
	return buf.Bytes(), nil
}

// IndexByName reports whether the index (default.nix) of t depends on the
// containers' names alone, so GenerateIndex renders it exactly: true for
// the embedded template, false for an override, which may use any field.
func IndexByName(t *templates.Set) bool {
	return t.Sources[templates.DefaultNix] == "embedded"
}

// GenerateIndex renders the index (IndexFile) of the containers named
// names, in any order. Only valid when IndexByName(t).
func GenerateIndex(cfg *hostconfig.Config, names []string, t *templates.Set) ([]byte, error) {
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	host := hostData(cfg)
	idx := &templates.Index{Host: host, Containers: make([]*templates.Container, len(sorted))}
	for i, n := range sorted {
		idx.Containers[i] = &templates.Container{Host: host, Name: templates.V(n), HostFile: templates.V(HostFile(n))}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTo(&buf, templates.DefaultNix, idx); err != nil {
		return nil, fmt.Errorf("generate %s: %w", IndexFile, err)
	}
	return buf.Bytes(), nil
}

// RenderKey is a digest of everything besides the registry that a set's
// bytes depend on: the templates and the host configuration. A set written
// under another key must be rendered anew as a whole. The whole host
// configuration counts (but for the path it was read from), not a list of
// the settings the generator reads today: a list falls behind the next
// setting, and the live set would then keep declarations the host no
// longer asks for. A setting the set does not depend on costs one full
// render when it changes.
func RenderKey(cfg *hostconfig.Config, t *templates.Set) (string, error) {
	h := sha256.New()
	c := *cfg
	c.Path = ""
	host, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("render key: %w", err)
	}
	var n [8]byte
	for _, part := range [][]byte{{Version}, []byte(t.Digest), host} {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
