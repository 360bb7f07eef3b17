package lifecycle

import (
	"context"

	"github.com/flyingcircusio/devhost/internal/registry"
)

// Keep sets or clears a container's keep flag, which exempts it from
// cleanup. The flag is not part of the host's declarations, so it needs no
// rebuild. The owner, an administrator or a user the container is shared
// with may change it.
func (h *Host) Keep(ctx context.Context, name string, on bool, caller Caller) (*registry.Container, error) {
	op, err := h.lockChange(ctx, name, caller, "change containers")
	if err != nil {
		return nil, err
	}
	defer op.unlock()
	var (
		c       *registry.Container
		gen     uint64
		changed bool
	)
	err = h.withRegistry(ctx, func() error {
		var (
			prev *string
			err  error
		)
		// A colleague the container is shared with may keep it too.
		c, prev, err = h.entryFor(ctx, name, func(c *registry.Container) error {
			return caller.CheckShared(h.Cfg.Access, "change", c)
		})
		if err != nil {
			return err
		}
		if c.Keep == on {
			return nil
		}
		c.Keep = on
		if err := h.Reg.Put(c); err != nil {
			return err
		}
		if changed = !h.sameHostPart(*prev, c); !changed {
			return nil
		}
		if gen, err = h.bump(); err != nil {
			return err
		}
		return h.recordRequest("keep", name, gen, prev, nil)
	})
	if err != nil {
		return nil, err
	}
	if changed {
		// Only if a template override made the flag part of the host.
		if _, err := h.Apply(ctx, gen); err != nil {
			return c, err
		}
	}
	return c, nil
}
