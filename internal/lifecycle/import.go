package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/registry"
)

// ImportItem is a container of the old devhost to register.
type ImportItem struct {
	Name     string
	Owner    string
	Channel  string
	Aliases  []string
	Address  netip.Addr // the old address; kept when the pool allows it
	Running  bool
	Deployed time.Time
}

// ImportResult is what happened to one ImportItem.
type ImportResult struct {
	Name     string `json:"name"`
	Imported bool   `json:"imported"`
	Address  string `json:"address,omitempty"`
	// OldAddress is set when the container had to get a new address.
	OldAddress string `json:"old_address,omitempty"`
	Profile    string `json:"profile,omitempty"` // its existing system profile
	Skipped    string `json:"skipped,omitempty"`
	Warning    string `json:"warning,omitempty"`
}

// ImportOptions tune Import.
type ImportOptions struct {
	DryRun bool
	// EtcContainersDir, when set, is where nixos-container keeps the
	// imperative containers' <name>.conf (/etc/containers): an imported
	// container's file is renamed to <name>.conf.pre-devhost so the
	// declaration's file can take its place (and back if the entry is gone
	// again when the import ends).
	EtcContainersDir string
}

// Import registers containers the old devhost created, keeping their
// address (when it is in the pool and free), their system profile, and
// their last deployment time, and applies them in one rebuild. Names
// already registered are skipped. Only administrators may import.
func (h *Host) Import(ctx context.Context, items []ImportItem, caller Caller, opts ImportOptions) ([]ImportResult, ApplyStats, error) {
	var st ApplyStats
	if !caller.Admin(h.Cfg.Access) {
		return nil, st, &DeniedError{User: caller.User, What: "import containers",
			Why: "only root and members of the admin group " + h.Cfg.Access.AdminGroup + " may"}
	}
	results := make([]ImportResult, len(items))
	var moved []string
	var gen uint64
	err := h.withRegistry(ctx, func() error {
		if _, err := h.recoverOps(ctx); err != nil {
			return err
		}
		all, err := h.Reg.LoadAll()
		if err != nil {
			var de *diag.Error
			if !errors.As(err, &de) {
				return err
			}
		}
		used := map[netip.Addr]bool{}
		for _, c := range all {
			used[c.Address.Unmap()] = true
		}
		for i, it := range items {
			res := &results[i]
			res.Name = it.Name
			if _, err := os.Stat(h.Reg.Path(it.Name)); err == nil {
				res.Skipped = "already registered"
				continue
			}
			// The channel may come from a file inside the old container
			// (enc.json): it gets the same check as an ensure's.
			if _, err := h.ResolveChannel(it.Channel); err != nil {
				res.Skipped = withHint(err)
				continue
			}
			addr := it.Address.Unmap()
			if !addr.IsValid() || !h.Cfg.Addresses.Assignable(addr) || used[addr] {
				if it.Address.IsValid() {
					res.OldAddress = it.Address.String()
				}
				if opts.DryRun {
					res.Address = "(new)"
					addr = h.Cfg.Addresses.First()
				} else if addr, err = h.Reg.Allocate(h.Cfg.Addresses, it.Name); err != nil {
					return err
				}
			}
			state := registry.Stopped
			if it.Running {
				state = registry.Running
			}
			deployed := it.Deployed.UTC().Truncate(time.Second)
			c := &registry.Container{Name: it.Name, Owner: it.Owner, Channel: it.Channel, Aliases: it.Aliases,
				Address: addr, State: state, Created: deployed, Deployed: deployed,
				Labels: map[string]string{"imported": "legacy"}}
			target := h.profileTarget(it.Name)
			if target == "" {
				res.Warning = "no system profile at " + h.ProfilePath(it.Name) + "; run devhost ensure to build one"
				c.LastError = "imported without a system profile; run `devhost ensure " + it.Name + "` to build one"
			}
			if err := c.Validate(); err != nil {
				res.Skipped = err.Error()
				continue
			}
			if res.Address == "" {
				res.Address = addr.String()
			}
			res.Profile = target
			if opts.DryRun {
				res.Imported = true
				continue
			}
			if err := h.Reg.Put(c); err != nil {
				return err
			}
			used[addr] = true
			res.Imported = true
			if opts.EtcContainersDir != "" {
				conf := filepath.Join(opts.EtcContainersDir, it.Name+".conf")
				if _, err := os.Lstat(conf); err == nil {
					if err := os.Rename(conf, conf+".pre-devhost"); err != nil {
						return fmt.Errorf("import %s: %w", it.Name, err)
					}
					moved = append(moved, conf)
				}
			}
		}
		if opts.DryRun {
			return nil
		}
		gen, err = h.bump()
		return err
	})
	if err != nil || opts.DryRun {
		return results, st, err
	}
	st, err = h.Apply(ctx, gen)
	var re *RebuildError
	if err == nil || errors.As(err, &re) {
		// Only now do the old profiles become devhost's (a build record
		// lets destroy and the sweep remove them). A failed rebuild keeps
		// the imported entries (they are the admin's desired state, marked
		// with the failure), so they are devhost's as well; an import that
		// failed before its entries were written must never make the sweep
		// delete an old container.
		werr := h.withRegistry(ctx, func() error {
			for _, res := range results {
				if !res.Imported || res.Profile == "" {
					continue
				}
				if _, err := os.Stat(h.Reg.Path(res.Name)); err != nil {
					continue
				}
				rec := BuildRecord{Profile: res.Profile, Time: h.now()}
				if err := writeJSON(h.paths().buildRecord(res.Name), rec, 0o644); err != nil {
					return err
				}
			}
			return nil
		})
		if werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if err != nil {
		// Put the old containers' files back for those no longer
		// registered. A failed rebuild keeps the entries, and with them
		// the files out of the declarations' way for the next apply; the
		// old containers keep running meanwhile.
		for _, conf := range moved {
			name := filepath.Base(conf[:len(conf)-len(".conf")])
			if _, serr := os.Stat(h.Reg.Path(name)); serr != nil {
				_ = os.Rename(conf+".pre-devhost", conf)
			}
		}
	}
	return results, st, err
}
