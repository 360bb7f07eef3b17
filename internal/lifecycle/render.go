package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/names"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/templates"
)

// Renderer renders and writes the generated set with the generator and
// the host's templates.
type Renderer struct {
	Cfg       *hostconfig.Config
	Templates *templates.Set
}

// Rendered is a generated set in memory.
type Rendered struct {
	Set        *generator.Set
	HostDigest string
}

// Render generates the set for cs, after the live set: in dns-01 mode its
// wildcard shards keep the names they hold (generator.GenerateAfter), so
// that a removed container reissues no certificate.
func (r *Renderer) Render(cs []*registry.Container) (*Rendered, error) {
	var prev generator.Shards
	if r.Cfg.ACME.DNS01() {
		var err error
		if prev, err = generator.ReadShards(r.Cfg.GeneratedDir); err != nil {
			return nil, err
		}
	}
	s, err := generator.GenerateAfter(r.Cfg, cs, r.Templates, prev)
	if err != nil {
		return nil, err
	}
	return &Rendered{Set: s, HostDigest: s.HostDigest()}, nil
}

// Write replaces the live generated set. Its callers hold the rebuild
// lock, so nobody else writes the live set meanwhile, and what an
// interrupted Write left next to it is stale: its temporary directories,
// and the previous set (<dir>.old) it was deleting when it was killed.
// generator.Write refuses a <dir>.old without default.nix, so without this
// one kill at that moment would stop every later rebuild until someone
// removed it by hand.
func (r *Renderer) Write(x *Rendered) error {
	if err := cleanInterruptedWrite(r.Cfg.GeneratedDir); err != nil {
		return err
	}
	return generator.Write(r.Cfg.GeneratedDir, x.Set)
}

// cleanInterruptedWrite removes the temporary directories of dir's
// interrupted writes and a half-deleted <dir>.old: one without default.nix
// whose every entry is a directory a set has at its top level (containers,
// www, a container's name). Anything else is left for generator.Write to
// refuse.
func cleanInterruptedWrite(dir string) error {
	dir = filepath.Clean(dir)
	parent, base := filepath.Split(dir)
	tmps, err := filepath.Glob(filepath.Join(parent, "."+base+".new-*"))
	if err != nil {
		return fmt.Errorf("generated set %s: %w", dir, err)
	}
	for _, t := range tmps {
		if err := os.RemoveAll(t); err != nil {
			return fmt.Errorf("generated set %s: %w", dir, err)
		}
	}
	old := dir + generator.OldSuffix
	ents, err := os.ReadDir(old)
	if err != nil || len(ents) == 0 {
		return nil // absent, empty, or not a directory: generator.Write decides
	}
	for _, e := range ents {
		n := e.Name()
		if !e.IsDir() || n != "containers" && n != "www" && names.Container(n) != nil {
			return nil // default.nix (a whole set), or not a set's
		}
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("generated set %s: %w", dir, err)
	}
	return nil
}

// hostPart is container name's host-side file ("" when absent).
func (x *Rendered) hostPart(name string) string {
	return string(x.Set.Files[generator.HostFile(name)])
}

// configuration is container name's own system configuration.
func (x *Rendered) configuration(name string) []byte {
	return x.Set.Files[generator.ConfigurationFile(name)]
}

func sortContainers(cs []*registry.Container) {
	slices.SortFunc(cs, func(a, b *registry.Container) int { return strings.Compare(a.Name, b.Name) })
}
