package generator

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"path"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/flyingcircusio/devhost/internal/names"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/templates"
)

// Version is the value of `version` in default.nix. It changes only when
// the contract in doc.go changes incompatibly.
const Version = 1

// BootstrapKey is the public half of the well-known key batou 2.3/2.4 uses
// for the user developer; authorised only with Compat.BootstrapKey.
const BootstrapKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc7V2c2zFPRMl8/gmBv1/MEldEuJau8jHjhx+2qziYs"

// Relative paths of the files in a set.
const (
	IndexFile  = "default.nix"
	StatusFile = "www/index.html"
	wwwDir     = "www"
)

// HostFile is the host-side file of container name in the set.
func HostFile(name string) string { return "containers/" + name + ".nix" }

// ConfigurationFile is the container system configuration of name in the
// set, relative to the set.
func ConfigurationFile(name string) string { return name + "/configuration.nix" }

// ConfigurationPath is the absolute path of name's system configuration in
// the written set; the lifecycle builds the container's system from it
// (nixos-config=<this>).
func ConfigurationPath(cfg *hostconfig.Config, name string) string {
	return path.Join(cfg.GeneratedDir, ConfigurationFile(name))
}

// ProvisionNixPath is where the lifecycle puts the deployment's
// provision.nix of container name on the host: <StateDir>/provision/<name>.nix.
// The container's configuration.nix imports it when it exists.
func ProvisionNixPath(cfg *hostconfig.Config, name string) string {
	return path.Join(cfg.StateDir, "provision", name+".nix")
}

// SelfSignedCertPath and SelfSignedKeyPath are the certificate pair the
// NixOS module provides for virtual hosts when ACME is off.
func SelfSignedCertPath(cfg *hostconfig.Config) string {
	return path.Join(cfg.StateDir, "selfsigned", "cert.pem")
}

// SelfSignedKeyPath: see SelfSignedCertPath.
func SelfSignedKeyPath(cfg *hostconfig.Config) string {
	return path.Join(cfg.StateDir, "selfsigned", "key.pem")
}

// BasicAuthPath is the htpasswd file of a protected container:
// <StateDir>/htpasswd/<name>, readable by root and nginx's group only.
func BasicAuthPath(cfg *hostconfig.Config, name string) string {
	return path.Join(cfg.StateDir, "htpasswd", name)
}

// ProfilePath is the system profile of container name that the host
// declares as containers.<name>.path.
func ProfilePath(cfg *hostconfig.Config, name string) string {
	return path.Join(cfg.ProfileDir, name, "system")
}

// Set is a generated set in memory: relative slash-separated paths to
// contents.
type Set struct {
	Files map[string][]byte
}

// Paths returns the set's paths, sorted.
func (s *Set) Paths() []string {
	p := make([]string, 0, len(s.Files))
	for k := range s.Files {
		p = append(p, k)
	}
	sort.Strings(p)
	return p
}

// Digest is a stable hash of every file (path and content).
func (s *Set) Digest() string { return s.digest(func(string) bool { return true }) }

// HostDigest is a hash of the files the host's NixOS evaluation reads
// (default.nix and containers/). When it is unchanged, the host needs no
// rebuild even if the status page or a container's system changed.
func (s *Set) HostDigest() string { return s.digest(IsHostFile) }

// ContainerDigest is a hash of container name's own files (its system
// configuration): when it changes, that container's system needs a rebuild.
// It is "" when the set has no such container.
func (s *Set) ContainerDigest(name string) string {
	prefix := name + "/"
	found := false
	for p := range s.Files {
		if strings.HasPrefix(p, prefix) {
			found = true
			break
		}
	}
	if !found {
		return ""
	}
	return s.digest(func(p string) bool { return strings.HasPrefix(p, prefix) })
}

// IsHostFile reports whether p (relative to the set) is read by the host's
// evaluation of default.nix.
func IsHostFile(p string) bool {
	return p == IndexFile || p == CertsFile || strings.HasPrefix(p, "containers/")
}

func (s *Set) digest(include func(string) bool) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range s.Paths() {
		if !include(p) {
			continue
		}
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
		binary.BigEndian.PutUint64(n[:], uint64(len(s.Files[p])))
		h.Write(n[:])
		h.Write(s.Files[p])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Generate turns the host configuration and the registry's containers (in
// any order) into the generated set. It is pure and deterministic: the same
// input gives the same bytes. An invalid configuration or container is
// reported as a *diag.Error naming every problem, and nothing is generated.
func Generate(cfg *hostconfig.Config, cs []*registry.Container, t *templates.Set) (*Set, error) {
	return GenerateAfter(cfg, cs, t, nil)
}

// GenerateAfter is Generate for a set that follows one whose wildcard
// shards held prev (ReadShards of the live set; nil when unknown): in dns-01
// mode a shard keeps its names while it needs none it lacks (planCerts), so
// that a removed container reissues no certificate. Without dns-01 prev is
// ignored.
func GenerateAfter(cfg *hostconfig.Config, cs []*registry.Container, t *templates.Set, prev Shards) (*Set, error) {
	if cfg == nil || t == nil {
		return nil, errors.New("generate: no host configuration or templates")
	}
	diags := check(cfg, cs)
	if err := diag.NewError(diags, nil); err != nil {
		return nil, err
	}
	sorted := slices.Clone(cs)
	slices.SortFunc(sorted, func(a, b *registry.Container) int { return strings.Compare(a.Name, b.Name) })

	host := hostData(cfg)
	idx := &templates.Index{Host: host, Containers: make([]*templates.Container, len(sorted))}
	for i, c := range sorted {
		idx.Containers[i] = containerData(cfg, host, c)
	}

	set := &Set{Files: make(map[string][]byte, 2*len(sorted)+3)}
	if host.DNS01 {
		b, err := json.MarshalIndent(planCerts(cfg, sorted, prev), "", " ")
		if err != nil {
			return nil, fmt.Errorf("generate %s: %w", CertsFile, err)
		}
		set.Files[CertsFile] = append(b, '\n')
	}
	// The containers' files are independent: render them in parallel
	// (templates are safe for concurrent use), each into its own slot, so
	// the result does not depend on scheduling.
	type files struct{ host, conf []byte }
	out := make([]files, len(sorted))
	errs := make([]error, len(sorted))
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), max(1, len(sorted)/16))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for i := w; i < len(sorted); i += workers {
				name := sorted[i].Name
				buf.Reset()
				if err := t.ExecuteTo(&buf, templates.ContainerNix, idx.Containers[i]); err != nil {
					errs[i] = fmt.Errorf("generate %s: %w", HostFile(name), err)
					continue
				}
				out[i].host = bytes.Clone(buf.Bytes())
				buf.Reset()
				if err := t.ExecuteTo(&buf, templates.ConfigurationNix, idx.Containers[i]); err != nil {
					errs[i] = fmt.Errorf("generate %s: %w", ConfigurationFile(name), err)
					continue
				}
				out[i].conf = bytes.Clone(buf.Bytes())
			}
		}()
	}
	// The index and the status page, meanwhile.
	var (
		indexNix, statusHTML []byte
		indexErr             error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		var buf bytes.Buffer
		if err := t.ExecuteTo(&buf, templates.DefaultNix, idx); err != nil {
			indexErr = fmt.Errorf("generate %s: %w", IndexFile, err)
			return
		}
		indexNix = bytes.Clone(buf.Bytes())
		buf.Reset()
		if err := t.ExecuteTo(&buf, templates.IndexHTML, statusData(idx)); err != nil {
			indexErr = fmt.Errorf("generate %s: %w", StatusFile, err)
			return
		}
		statusHTML = buf.Bytes()
	}()
	wg.Wait()
	for i, c := range sorted {
		if errs[i] != nil {
			return nil, errs[i]
		}
		set.Files[HostFile(c.Name)] = out[i].host
		set.Files[ConfigurationFile(c.Name)] = out[i].conf
	}
	if indexErr != nil {
		return nil, indexErr
	}
	set.Files[IndexFile] = indexNix
	set.Files[StatusFile] = statusHTML
	return set, nil
}

// statusData is the public part of idx, for the status page.
func statusData(idx *templates.Index) *templates.Status {
	s := &templates.Status{PublicAddress: idx.Host.PublicAddress, Containers: make([]templates.StatusContainer, len(idx.Containers))}
	for i, c := range idx.Containers {
		s.Containers[i] = templates.StatusContainer{Name: c.Name, State: c.State, URLs: c.URLs, Protected: c.Protected}
	}
	return s
}

// check validates what Generate relies on: the host configuration, every
// entry on its own (registry.Container.Validate), and that names and
// addresses are unique. The registry's loader reports the same problems
// with positions; this keeps Generate safe for any caller.
func check(cfg *hostconfig.Config, cs []*registry.Container) hcl.Diagnostics {
	var diags hcl.Diagnostics
	add := func(summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail})
	}
	var de *diag.Error
	if err := cfg.Validate(); errors.As(err, &de) {
		for _, d := range de.Diags {
			c := *d
			c.Summary = "Host configuration: " + d.Summary
			diags = append(diags, &c)
		}
	} else if err != nil {
		add("Invalid host configuration", err.Error())
	}
	for key, p := range map[string]string{"state_dir": cfg.StateDir, "generated_dir": cfg.GeneratedDir, "profile_dir": cfg.ProfileDir} {
		if !path.IsAbs(p) || path.Clean(p) != p {
			add("Host configuration: "+key+" is not a clean absolute path", fmt.Sprintf("%q: the generated set refers to it from anywhere, so it must be absolute.", p))
		}
	}
	byName := make(map[string]bool, len(cs))
	byAddr := make(map[[16]byte]string, len(cs))
	for i, c := range cs {
		if c == nil {
			add("Missing container", fmt.Sprintf("entry %d is nil", i))
			continue
		}
		if err := c.Validate(); errors.As(err, &de) {
			for _, d := range de.Diags {
				e := *d
				e.Summary = fmt.Sprintf("Container %q: %s", c.Name, d.Summary)
				diags = append(diags, &e)
			}
		} else if err != nil {
			add(fmt.Sprintf("Container %q is invalid", c.Name), err.Error())
		}
		if byName[c.Name] {
			add("Container name used twice", fmt.Sprintf("%q appears twice in the registry.", c.Name))
		}
		byName[c.Name] = true
		for _, a := range []struct{ addr, host netip.Addr }{
			{c.Address, cfg.Addresses.HostAddress},
			{localAddress6(cfg, c), cfg.Addresses.HostAddress6},
		} {
			if !a.addr.IsValid() {
				continue
			}
			k := a.addr.Unmap().As16()
			if other, ok := byAddr[k]; ok {
				add("Address used twice", fmt.Sprintf("%s is the address of both %q and %q.", a.addr, other, c.Name))
			}
			byAddr[k] = c.Name
			if a.addr == a.host {
				add("Container address is the host address", fmt.Sprintf("%q has %s, the host side of every container's link.", c.Name, a.addr))
			}
		}
		for _, a := range c.Aliases {
			if err := CheckAlias(cfg, a, c.Name); err != nil {
				add(fmt.Sprintf("Container %q: invalid alias name", c.Name), err.Error())
			}
		}
	}
	return diags
}

// proxyConfig are the nginx directives of every container's location "/"
// (its extraConfig).
// Values come from the validated host configuration (numbers and an nginx
// size); nothing user-supplied reaches nginx here.
func proxyConfig(cfg *hostconfig.Config) []string {
	timeout := int64(math.Ceil(cfg.Nginx.ProxyTimeout.Seconds()))
	// The proxy headers (Host, X-Real-IP, X-Forwarded-*) come from the
	// location's recommendedProxySettings = true: NixOS includes them in
	// the location exactly once, whatever services.nginx's global setting.
	// Writing them here too would send every header twice.
	return []string{
		// The container's certificate is self-signed; the hop is a
		// point-to-point link on this machine.
		"proxy_ssl_verify off;",
		"proxy_ssl_server_name on;",
		"proxy_ssl_name $host;",
		"proxy_connect_timeout 10s;",
		fmt.Sprintf("proxy_read_timeout %ds;", timeout),
		fmt.Sprintf("proxy_send_timeout %ds;", timeout),
		"client_max_body_size " + cfg.Nginx.ClientMaxBodySize + ";",
	}
}

func hostData(cfg *hostconfig.Config) *templates.Host {
	return &templates.Host{
		PublicAddress:  templates.V(cfg.PublicAddress),
		HostAddress:    templates.V(cfg.Addresses.HostAddress.String()),
		HostAddress6:   templates.V(addrText(cfg.Addresses.HostAddress6)),
		GeneratedDir:   templates.V(cfg.GeneratedDir),
		WWWRoot:        templates.V(path.Join(cfg.GeneratedDir, wwwDir)),
		ACME:           cfg.ACME.Enable,
		DNS01:          cfg.ACME.DNS01(),
		MainCert:       templates.V(cfg.PublicAddress),
		SelfSignedCert: templates.V(SelfSignedCertPath(cfg)),
		SelfSignedKey:  templates.V(SelfSignedKeyPath(cfg)),
		AliasProxy:     cfg.AliasProxy,
		Cleanup:        cfg.Cleanup.Enable,
		CleanupAt:      templates.V(cfg.Cleanup.At),
		ProxyConfig:    templates.Vs(proxyConfig(cfg)),
		BootstrapKey:   cfg.Compat.BootstrapKey,
		ProvisionDir:   templates.V(path.Join(cfg.StateDir, "provision")),
	}
}

// addrText is a's text, or "" for the invalid address (none).
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// localAddress6 is the IPv6 address c's declaration gets: its own, while
// the host has an IPv6 pool. A host that drops network6 declares no IPv6
// (there is no host address for the links), though the entries keep
// theirs for when it comes back.
func localAddress6(cfg *hostconfig.Config, c *registry.Container) netip.Addr {
	if !cfg.Addresses.HasIPv6() {
		return netip.Addr{}
	}
	return c.Address6
}

// AliasFQDN is the public name of alias of container name, in the host's
// alias style: <alias>.<name>.<public> (nested) or <alias>--<name>.<public>
// (flat).
func AliasFQDN(cfg *hostconfig.Config, alias, name string) string {
	if cfg.AliasStyle == hostconfig.AliasFlat {
		return alias + names.FlatSeparator + name + "." + cfg.PublicAddress
	}
	return alias + "." + name + "." + cfg.PublicAddress
}

// CheckAlias checks that AliasFQDN of alias and name is a valid domain
// name that means nothing else (names.FQDN, names.FlatFQDN).
func CheckAlias(cfg *hostconfig.Config, alias, name string) error {
	if cfg.AliasStyle == hostconfig.AliasFlat {
		return names.FlatFQDN(alias, name, cfg.PublicAddress)
	}
	return names.FQDN(alias, name, cfg.PublicAddress)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// containerURLs are c's alias names and its public URLs.
func containerURLs(cfg *hostconfig.Config, c *registry.Container) (aliasFQDNs, urls []string) {
	fqdn := c.Name + "." + cfg.PublicAddress
	aliasFQDNs = make([]string, len(c.Aliases))
	for i, a := range c.Aliases {
		aliasFQDNs[i] = AliasFQDN(cfg, a, c.Name)
	}
	urls = []string{"https://" + fqdn + "/"}
	if cfg.AliasProxy {
		for _, a := range aliasFQDNs {
			urls = append(urls, "https://"+a+"/")
		}
	}
	return aliasFQDNs, urls
}

func containerData(cfg *hostconfig.Config, host *templates.Host, c *registry.Container) *templates.Container {
	fqdn := c.Name + "." + cfg.PublicAddress
	aliasFQDNs, urls := containerURLs(cfg, c)
	// The owner's environment keys, then the keys of the users the
	// container is shared with (the lifecycle read them into the entry).
	keys := slices.Concat(c.SSHKeys, c.SharedKeys)
	if cfg.Compat.BootstrapKey && !slices.Contains(keys, BootstrapKey) {
		keys = append(keys, BootstrapKey)
	}
	labels := make([]templates.Label, 0, len(c.Labels))
	for _, k := range slices.Sorted(maps.Keys(c.Labels)) {
		labels = append(labels, templates.Label{Key: templates.V(k), Value: templates.V(c.Labels[k])})
	}
	home := ""
	if c.ServiceUser != "" {
		home = "/srv/" + c.ServiceUser
	}
	return &templates.Container{
		Host:          host,
		Name:          templates.V(c.Name),
		FQDN:          templates.V(fqdn),
		Aliases:       templates.Vs(c.Aliases),
		AliasFQDNs:    templates.Vs(aliasFQDNs),
		CertNames:     templates.Vs(append([]string{c.Name, fqdn}, aliasFQDNs...)),
		URLs:          templates.Vs(urls),
		ProxyPass:     templates.V("https://" + c.Name),
		Owner:         templates.V(c.Owner),
		Environment:   templates.V(c.Environment),
		Root:          templates.V(c.Root),
		ServiceUser:   templates.V(c.ServiceUser),
		ServiceHome:   templates.V(home),
		Channel:       templates.V(c.Channel),
		StateVersion:  templates.V(c.StateVersion),
		LocalAddress:  templates.V(c.Address.String()),
		LocalAddress6: templates.V(addrText(localAddress6(cfg, c))),
		ProfilePath:   templates.V(ProfilePath(cfg, c.Name)),
		ProvisionPath: templates.V(ProvisionNixPath(cfg, c.Name)),
		HostFile:      templates.V(HostFile(c.Name)),
		AutoStart:     c.State == registry.Running,
		State:         templates.V(string(c.State)),
		Created:       templates.V(formatTime(c.Created)),
		Deployed:      templates.V(formatTime(c.Deployed)),
		Keep:          c.Keep,
		SSHKeys:       templates.Vs(keys),
		Labels:        labels,
		LastError:     templates.V(c.LastError),
		Unit:          templates.V("container@" + c.Name),
		Limits:        limitsData(c.Limits.Or(cfg.Limits)),
		BasicAuthFile: templates.V(basicAuthFile(cfg, c)),
		Protected:     c.ProtectUser != "",
	}
}

// limitsData is l for the templates, nil when no limit is set.
func limitsData(l limits.Limits) *templates.Limits {
	if l.IsZero() {
		return nil
	}
	return &templates.Limits{
		MemoryMax: templates.V(l.MemoryMax),
		CPUWeight: l.CPUWeight,
		CPUQuota:  templates.V(l.CPUQuota),
		TasksMax:  l.TasksMax,
	}
}

func basicAuthFile(cfg *hostconfig.Config, c *registry.Container) string {
	if c.ProtectUser == "" {
		return ""
	}
	return BasicAuthPath(cfg, c.Name)
}
