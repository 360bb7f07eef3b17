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

// allocState is <stateDir>/addresses.hcl (addresses6.hcl for IPv6): the
// highest address ever handed out in network. Addresses are handed out in
// ascending order above it, so the address of a destroyed container is not
// reused (and old DNS entries, known_hosts lines or firewall rules for it
// cannot hit a new container) until the pool has been gone through once.
// Each family has its own file, so a registry without IPv6 keeps exactly
// the file it always had.
type allocState struct {
	Network   string `hcl:"network"`
	HighWater string `hcl:"high_water"`
}

func (r *Registry) allocPath(file string) string { return filepath.Join(r.stateDir, file) }

// The allocation state files of the two families.
const (
	allocFile4 = "addresses.hcl"
	allocFile6 = "addresses6.hcl"
)

func (r *Registry) readAllocState(file string, pool hostconfig.AddressPool) (netip.Addr, error) {
	path := r.allocPath(file)
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

func (r *Registry) writeAllocState(file string, pool hostconfig.AddressPool, hw netip.Addr) error {
	f := hclwrite.NewEmptyFile()
	b := f.Body()
	b.SetAttributeValue("network", cty.StringVal(pool.Network.String()))
	b.SetAttributeValue("high_water", cty.StringVal(hw.String()))
	data := append([]byte("# Written by devhost: the highest container address ever handed out in network.\n"+
		"# Addresses are reused only once every address of the pool has been used.\n"), hclwrite.Format(f.Bytes())...)
	return atomicfile.WriteFile(r.allocPath(file), data, 0o644)
}

// Allocate returns the address for container name. A registered container
// keeps its address for life; a new one gets the next never-used address of
// pool (the network, broadcast and host addresses are never handed out).
// Once the pool has been gone through, the lowest address no registered
// container holds is reused. Every entry must be valid (an invalid one
// might hold an address). The caller holds Lock and Puts the container
// before unlocking.
func (r *Registry) Allocate(pool hostconfig.AddressPool, name string) (netip.Addr, error) {
	c, err := r.Get(name)
	if err == nil {
		return c.Address, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return netip.Addr{}, err
	}
	used, _, err := r.usedAddresses()
	if err != nil {
		return netip.Addr{}, err
	}
	return r.allocate(pool, allocFile4, "addresses.network", name, used)
}

// AllocateBoth is Allocate and Allocate6 for a new container, reading the
// registry's addresses once (usedAddresses is what an allocation costs).
// addr6 is invalid when the pool has no IPv6.
func (r *Registry) AllocateBoth(pool hostconfig.AddressPool, name string) (addr, addr6 netip.Addr, err error) {
	if _, err := r.Get(name); err == nil {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("registry: %q is registered already; its addresses are its own", name)
	} else if !errors.Is(err, ErrNotFound) {
		return netip.Addr{}, netip.Addr{}, err
	}
	used, used6, err := r.usedAddresses()
	if err != nil {
		return netip.Addr{}, netip.Addr{}, err
	}
	if addr, err = r.allocate(pool, allocFile4, "addresses.network", name, used); err != nil {
		return netip.Addr{}, netip.Addr{}, err
	}
	if pool.HasIPv6() {
		if addr6, err = r.allocate(pool.IPv6(), allocFile6, "addresses.network6", name, used6); err != nil {
			return netip.Addr{}, netip.Addr{}, err
		}
	}
	return addr, addr6, nil
}

// Allocate6 is Allocate for the container's IPv6 address, from the pool's
// network6 (an invalid address and no error when the pool has none). It
// has its own high-water mark, so IPv6 addresses are as stable and as
// slowly reused as IPv4 ones. A registered container keeps its IPv6
// address for life; one registered before network6 was configured gets
// its first here (the caller Puts it under the same lock).
func (r *Registry) Allocate6(pool hostconfig.AddressPool, name string) (netip.Addr, error) {
	if !pool.HasIPv6() {
		return netip.Addr{}, nil
	}
	c, err := r.Get(name)
	if err == nil && c.Address6.IsValid() {
		return c.Address6, nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return netip.Addr{}, err
	}
	_, used6, err := r.usedAddresses()
	if err != nil {
		return netip.Addr{}, err
	}
	return r.allocate(pool.IPv6(), allocFile6, "addresses.network6", name, used6)
}

// allocate hands out the next address of pool for name, given the
// addresses of the pool's family that registered containers hold (used)
// and the file keeping the pool's high-water mark. setting names the
// configuration key of the pool for the exhaustion message.
func (r *Registry) allocate(pool hostconfig.AddressPool, file, setting, name string, used map[netip.Addr]bool) (netip.Addr, error) {
	if !pool.Network.IsValid() || !pool.First().IsValid() {
		return netip.Addr{}, fmt.Errorf("registry: address pool %s has no address for containers", pool.Network)
	}
	hw, err := r.readAllocState(file, pool)
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
		if err := r.writeAllocState(file, pool, a); err != nil {
			return netip.Addr{}, err
		}
		return a, nil
	}
	// The pool has been gone through: reuse the lowest free address. At
	// most len(used)+1 addresses are looked at before a free one.
	for a = pool.First(); a.IsValid(); a = pool.Next(a) {
		if !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("registry: no address left for %q in %s (%d containers): destroy unused containers or enlarge %s: %w",
		name, pool.Network, len(used), setting, ErrPoolExhausted)
}
