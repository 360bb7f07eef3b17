package lifecycle

import (
	"slices"
	"strings"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
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
