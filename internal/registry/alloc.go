package registry

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
)

// ErrPoolExhausted is returned (wrapped) by Allocate when every address of
// the pool belongs to a registered container.
var ErrPoolExhausted = errors.New("address pool exhausted")

// allocState is <stateDir>/addresses.hcl: the highest address ever handed
// out in network. Addresses are handed out in ascending order above it, so
// the address of a destroyed container is not reused (and old DNS entries,
// known_hosts lines or firewall rules for it cannot hit a new container)
// until the pool has been gone through once.
type allocState struct {
	Network   string `hcl:"network"`
	HighWater string `hcl:"high_water"`
}

func (r *Registry) allocPath() string { return filepath.Join(r.stateDir, "addresses.hcl") }

func (r *Registry) readAllocState(pool hostconfig.AddressPool) (netip.Addr, error) {
	path := r.allocPath()
	src, err := readEntry(path)
	if errors.Is(err, fs.ErrNotExist) {
		return netip.Addr{}, nil
	}
	if err != nil {
		return netip.Addr{}, fmt.Errorf("registry %s: %w", path, err)
	}
	body, diags := parseNative(path, src)
	var st allocState
	if !diags.HasErrors() {
		diags = gohcl.DecodeBody(body, nil, &st)
	}
	if diags.HasErrors() {
		return netip.Addr{}, diag.NewError(diags, map[string][]byte{path: src})
	}
	net, err1 := netip.ParsePrefix(st.Network)
	hw, err2 := netip.ParseAddr(st.HighWater)
	if err1 != nil || err2 != nil {
		return netip.Addr{}, diag.NewError(hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid address allocation state",
			Detail:   "network must be a prefix and high_water an address; delete the file to start allocating from the start of the pool again.",
			Subject:  &hcl.Range{Filename: path, Start: hcl.InitialPos, End: hcl.InitialPos},
		}}, map[string][]byte{path: src})
	}
	if net != pool.Network || !pool.Network.Contains(hw) {
		return netip.Addr{}, nil // the pool changed: start at its beginning
	}
	return hw, nil
}

func (r *Registry) writeAllocState(pool hostconfig.AddressPool, hw netip.Addr) error {
	f := hclwrite.NewEmptyFile()
	b := f.Body()
	b.SetAttributeValue("network", cty.StringVal(pool.Network.String()))
	b.SetAttributeValue("high_water", cty.StringVal(hw.String()))
	data := append([]byte("# Written by devhost: the highest container address ever handed out in network.\n"+
		"# Addresses are reused only once every address of the pool has been used.\n"), hclwrite.Format(f.Bytes())...)
	return atomicfile.WriteFile(r.allocPath(), data, 0o644)
}

// Allocate returns the address for container name. A registered container
// keeps its address for life; a new one gets the next never-used address of
// pool (the network, broadcast and host addresses are never handed out).
// Once the pool has been gone through, the lowest address no registered
// container holds is reused. Every entry must be valid (an invalid one
// might hold an address). The caller holds Lock and Puts the container
// before unlocking.
func (r *Registry) Allocate(pool hostconfig.AddressPool, name string) (netip.Addr, error) {
	if !pool.Network.IsValid() || !pool.First().IsValid() {
		return netip.Addr{}, fmt.Errorf("registry: address pool %s has no address for containers", pool.Network)
	}
	c, err := r.Get(name)
	if err == nil {
		return c.Address, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return netip.Addr{}, err
	}
	all, err := r.LoadAll()
	if err != nil {
		return netip.Addr{}, err
	}
	used := make(map[netip.Addr]bool, len(all))
	for _, c := range all {
		used[c.Address.Unmap()] = true
	}
	hw, err := r.readAllocState(pool)
	if err != nil {
		return netip.Addr{}, err
	}
	// Fresh addresses above the high-water mark first.
	a := pool.First()
	if hw.IsValid() {
		a = pool.Next(hw)
	}
	for a.IsValid() && used[a] {
		a = pool.Next(a)
	}
	if a.IsValid() {
		if err := r.writeAllocState(pool, a); err != nil {
			return netip.Addr{}, err
		}
		return a, nil
	}
	// The pool has been gone through: reuse the lowest free address.
	for a = pool.First(); a.IsValid(); a = pool.Next(a) {
		if !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("registry: no address left for %q in %s (%d containers): destroy unused containers or enlarge addresses.network: %w",
		name, pool.Network, len(all), ErrPoolExhausted)
}
