package lifecycle

import (
	"context"
	"fmt"

	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/names"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/internal/runner"
)

// NotFoundError is an operation on a container that is not registered.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("container %q is not registered on this devhost (see `devhost status`)", e.Name)
}

// Is makes errors.Is(err, registry.ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == registry.ErrNotFound }

// NameError is an operation on a name that is not a valid container name.
// It is refused before any lock is taken: the name becomes part of lock,
// intent and registry paths, and "../x" must never reach them.
type NameError struct{ Err error }

func (e *NameError) Error() string { return e.Err.Error() }

func (e *NameError) Unwrap() error { return e.Err }

func checkName(name string) error {
	if err := names.Container(name); err != nil {
		return &NameError{Err: err}
	}
	return nil
}

// DestroyResult is what a destroy did.
type DestroyResult struct {
	Container *registry.Container
	Apply     ApplyStats
}

// Destroy removes a container: its registry entry (and with it the host's
// declaration, proxy and hosts entries) in one rebuild, then its unit,
// profile, root directory and provision.nix. A failed rebuild restores
// the entry.
func (h *Host) Destroy(ctx context.Context, name string, caller Caller) (*DestroyResult, error) {
	op, err := h.lockChange(ctx, name, caller, "destroy containers")
	if err != nil {
		return nil, err
	}
	defer op.unlock()
	res := &DestroyResult{}
	var gen uint64
	err = h.withRegistry(ctx, func() error {
		c, prev, err := h.entryFor(ctx, name, func(c *registry.Container) error {
			return caller.CheckOwner(h.Cfg.Access, "destroy", name, c.Owner)
		})
		if err != nil {
			return err
		}
		res.Container = c
		if err := atomicfile.WriteFile(h.paths().purgeMarker(name), nil, 0o644); err != nil {
			return err
		}
		if err := h.Reg.Delete(name); err != nil {
			return err
		}
		if gen, err = h.bump(); err != nil {
			return err
		}
		return h.recordRequest("destroy", name, gen, prev, nil)
	})
	if err != nil {
		return nil, err
	}
	if res.Apply, err = h.Apply(ctx, gen); err != nil {
		return res, err
	}
	// The host's switch leaves the unit running (an instance of NixOS'
	// container@ template): stop it, outside the registry lock (a stop
	// may take a while). The op lock keeps the name ours.
	if err := h.stopUnit(ctx, name); err != nil {
		return res, err
	}
	err = h.withRegistry(ctx, func() error {
		if _, err := h.Reg.Get(name); err == nil {
			return nil // a failed rebuild restored it meanwhile
		}
		return h.purge(ctx, name)
	})
	return res, err
}

// stopUnit stops a container's unit (a no-op for a stopped one).
func (h *Host) stopUnit(ctx context.Context, name string) error {
	argv := append(append([]string(nil), h.Cfg.Commands.Systemctl...), "stop", unit(name))
	if _, err := h.Run.Run(ctx, runner.Cmd{Argv: argv}); err != nil {
		return fmt.Errorf("stop container %s: %w", name, err)
	}
	return nil
}
