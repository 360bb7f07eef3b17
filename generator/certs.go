package generator

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/inputfile"
	"github.com/flyingcircusio/devhost/internal/registry"
)

// CertsFile is the set's certificate plan in dns-01 mode, read by
// default.nix (builtins.fromJSON) and, as the memory of what every shard
// certificate holds, by the next render (ReadShards).
const CertsFile = "certs.json"

// MaxCertNames is the most names Let's Encrypt puts in one certificate.
const MaxCertNames = 100

// shardWildcards is how many *.<name>.<public> names a shard certificate
// holds besides its own *.<public>.
const shardWildcards = MaxCertNames - 1

// maxCertsFile bounds ReadShards: a plan of hostconfig.MaxShards full
// shards of the longest names is well below it.
const maxCertsFile = 64 << 20

// Shards is what every wildcard shard slot's certificates hold, slot
// number (as a decimal string, JSON's object keys) to the ordered
// *.<name>.<public> names, retired ones included.
type Shards map[string][]string

// Cert is one ACME certificate of the dns-01 plan: NixOS'
// security.acme.certs.<Name> with domain and extraDomainNames.
type Cert struct {
	Domain           string   `json:"domain"`
	ExtraDomainNames []string `json:"extraDomainNames"`
}

// CertPlan is the content of CertsFile.
type CertPlan struct {
	// Certs by certificate name: the main one (named like the public
	// address: <public> and *.<public>) and the shards
	// (<public>-shard-<slot>[-<chunk>]: *.<public> and up to 99
	// *.<name>.<public>).
	Certs map[string]Cert `json:"certs"`
	// VhostCert names the certificate of every container virtual host that
	// is not on the main one: those with nested aliases.
	VhostCert map[string]string `json:"vhostCert"`
	// Shards is the memory for the next render (see planCerts).
	Shards Shards `json:"shards"`
}

// ShardSlot is the wildcard shard slot of container name among n slots: a
// stable hash (FNV-1a) of the name alone, so that no other container's
// arrival or departure moves it.
func ShardSlot(name string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % uint32(max(n, 1)))
}

// ShardCertName is the certificate name of chunk (0 for the first 99
// names) of slot.
func ShardCertName(public string, slot, chunk int) string {
	n := fmt.Sprintf("%s-shard-%02d", public, slot)
	if chunk > 0 {
		n += fmt.Sprintf("-%d", chunk)
	}
	return n
}

// planCerts is the dns-01 certificate plan of the containers cs (sorted by
// name) given what the shards held before (prev, nil when unknown).
//
// The rules, so that a new container reissues at most one certificate and
// a removed one reissues none:
//   - every primary name <name>.<public>, the status page and every flat
//     alias are on the main certificate (*.<public>), which never changes;
//   - a container with nested aliases needs *.<name>.<public>, which goes
//     into the shard of its slot (ShardSlot): a fixed number of slots, a
//     stable hash of the name, so no assignment is ever recorded or moved;
//   - a slot keeps its previous list while every name it needs is in it:
//     a destroyed container's wildcard stays as a retired name (harmless:
//     no virtual host answers for it), so its removal changes no
//     certificate's names, and NixOS reissues nothing;
//   - when a slot needs a name it lacks, its new list is its still-needed
//     names in their previous order, then the new ones sorted: retired
//     names leave with the reissue that happens anyway.
//
// A slot's list is cut into certificates of 99 wildcards; only a slot
// holding more than 99 (more containers with aliases than the slots were
// sized for: raise acme.shards) has a second one, and only there may one
// new container reissue two.
func planCerts(cfg *hostconfig.Config, cs []*registry.Container, prev Shards) *CertPlan {
	public := cfg.PublicAddress
	plan := &CertPlan{
		Certs:     map[string]Cert{public: {Domain: public, ExtraDomainNames: []string{"*." + public}}},
		VhostCert: map[string]string{},
		Shards:    Shards{},
	}
	if cfg.AliasStyle != hostconfig.AliasNested || !cfg.AliasProxy {
		return plan
	}
	want := map[string][]string{}
	for _, c := range cs {
		if len(c.Aliases) == 0 {
			continue
		}
		slot := fmt.Sprint(ShardSlot(c.Name, cfg.ACME.Shards))
		want[slot] = append(want[slot], "*."+c.Name+"."+public)
	}
	slots := map[string]bool{}
	for s := range want {
		slots[s] = true
	}
	for s, l := range prev {
		if validSlot(s, cfg.ACME.Shards) && len(l) > 0 {
			slots[s] = true
		}
	}
	for s := range slots {
		plan.Shards[s] = mergeShard(prev[s], want[s])
	}
	for s, l := range plan.Shards {
		slot, _ := strconv.Atoi(s) // validSlot or ShardSlot's decimal
		for chunk := 0; chunk*shardWildcards < len(l); chunk++ {
			names := l[chunk*shardWildcards : min(len(l), (chunk+1)*shardWildcards)]
			name := ShardCertName(public, slot, chunk)
			plan.Certs[name] = Cert{Domain: "*." + public, ExtraDomainNames: slices.Clone(names)}
			for _, w := range names {
				fqdn := strings.TrimPrefix(w, "*.")
				if slices.Contains(want[s], w) {
					plan.VhostCert[fqdn] = name
				}
			}
		}
	}
	return plan
}

// validSlot reports whether s is the decimal number of one of n slots (a
// remembered plan from before acme.shards changed may have others, which
// are dropped).
func validSlot(s string, n int) bool {
	i, err := strconv.Atoi(s)
	return err == nil && strconv.Itoa(i) == s && i >= 0 && i < n
}

// mergeShard is the new list of a slot that held prev and needs want.
func mergeShard(prev, want []string) []string {
	have := make(map[string]bool, len(prev))
	for _, n := range prev {
		have[n] = true
	}
	var added []string
	for _, n := range want {
		if !have[n] {
			added = append(added, n)
		}
	}
	if len(added) == 0 {
		return slices.Clone(prev) // nothing new: no reissue, retired names stay
	}
	needed := make(map[string]bool, len(want))
	for _, n := range want {
		needed[n] = true
	}
	out := make([]string, 0, len(want))
	for _, n := range prev {
		if needed[n] {
			out = append(out, n)
		}
	}
	sort.Strings(added)
	return append(out, added...)
}

// ReadShards reads the shard memory of the generated set in dir: nil, no
// error, when the set or its CertsFile does not exist (a new host, or one
// in http-01 mode: the next plan starts from the registry alone).
func ReadShards(dir string) (Shards, error) {
	p, err := ReadCertPlan(dir)
	if p == nil {
		return nil, err
	}
	return p.Shards, nil
}

// ReadCertPlan reads the certificate plan of the generated set in dir
// (nil, no error, when it has none).
func ReadCertPlan(dir string) (*CertPlan, error) {
	p := filepath.Join(dir, CertsFile)
	b, err := inputfile.Read(p, maxCertsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read certificate plan: %w", err)
	}
	var plan CertPlan
	if err := json.Unmarshal(b, &plan); err != nil {
		return nil, fmt.Errorf("read certificate plan %s: %w (remove it: the next render plans the shards from the registry, which may reissue them once)", p, err)
	}
	return &plan, nil
}
