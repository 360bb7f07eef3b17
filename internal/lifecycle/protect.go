package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/basicauth"
	"github.com/flyingcircusio/devhost/internal/names"
	"github.com/flyingcircusio/devhost/internal/registry"
)

// DefaultProtectUser is the basic auth user of `devhost protect` without
// --user.
const DefaultProtectUser = "preview"

// ProtectResult is what a protect did.
type ProtectResult struct {
	Container *registry.Container
	// Password is the new password of Container.ProtectUser: shown once,
	// stored nowhere but as its hash. Empty after Unprotect.
	Password string
	Apply    ApplyStats
}

// basicAuthPath is the container's htpasswd file, which its vhosts name
// while the entry has a protect_user.
func (h *Host) basicAuthPath(name string) string { return generator.BasicAuthPath(h.Cfg, name) }

// Protect puts HTTP basic auth for user, with a new random password, on
// the container's virtual hosts (ACME's challenge path stays open; see the
// generator). The hash is written before the entry names user, so nginx
// never looks for a file that is not there; a changed entry is applied in
// the coalesced host rebuild, and Protect returns once nginx asks for the
// password. Protecting a protected container replaces its password (and
// user): nginx reads the file on every request, so that takes no rebuild.
// Only the owner or an admin may. When the rebuild fails, its rollback
// restores the unprotected entry, the file goes again and no password is
// returned; should the entry still name a user, the result has the
// password beside the error.
func (h *Host) Protect(ctx context.Context, name, user string, caller Caller) (*ProtectResult, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := names.User(user); err != nil {
		return nil, &NameError{Err: err}
	}
	if err := caller.CheckMember(h.Cfg.Access, "change containers"); err != nil {
		return nil, err
	}
	pw, err := basicauth.NewPassword()
	if err != nil {
		return nil, err
	}
	hash, err := basicauth.Hash(pw)
	if err != nil {
		return nil, err
	}
	// The op lock: an ensure in progress writes back the entry it read
	// before its build, which would drop the change made meanwhile.
	op, err := lock(ctx, h.paths().opLock(name))
	if err != nil {
		return nil, err
	}
	defer op.unlock()
	res := &ProtectResult{}
	file := h.basicAuthPath(name)
	gen, err := h.changeProtection(ctx, "protect", name, caller, res, func(c *registry.Container) (bool, error) {
		old, err := os.ReadFile(file)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("protect %s: %w", name, err)
		}
		if err := basicauth.WriteFile(file, user, hash); err != nil {
			return false, fmt.Errorf("protect %s: %w", name, err)
		}
		if c.ProtectUser == user {
			return false, nil
		}
		c.ProtectUser = user
		if err := h.Reg.Put(c); err != nil {
			// The entry still names the old user (or none): so must the file.
			if old == nil {
				_ = atomicfile.Remove(file)
			} else {
				_ = basicauth.Restore(file, old)
			}
			return false, err
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if res.Apply, err = h.Apply(ctx, gen); err != nil {
		kept, serr := h.dropUnusedBasicAuth(ctx, name)
		if serr != nil {
			return nil, errors.Join(err, serr)
		}
		if !kept {
			return nil, err
		}
		// The entry still names the user (its rebuild failed before,
		// or it was changed since): the new hash is in force wherever
		// the file is asked for, so its password must not be lost.
		res.Password = pw
		return res, err
	}
	res.Password = pw
	return res, nil
}

// Unprotect removes the basic auth from the container's virtual hosts:
// the entry's protect_user goes, the host rebuild applies it, and only
// then the password file, which the running nginx reads until the
// rebuild. After a failed rebuild the file stays (the host still asks for
// it); running Unprotect again retries.
func (h *Host) Unprotect(ctx context.Context, name string, caller Caller) (*ProtectResult, error) {
	op, err := h.lockChange(ctx, name, caller, "change containers")
	if err != nil {
		return nil, err
	}
	defer op.unlock()
	res := &ProtectResult{}
	gen, err := h.changeProtection(ctx, "unprotect", name, caller, res, func(c *registry.Container) (bool, error) {
		if c.ProtectUser == "" {
			return false, nil
		}
		c.ProtectUser = ""
		return true, h.Reg.Put(c)
	})
	if err != nil {
		return nil, err
	}
	if res.Apply, err = h.Apply(ctx, gen); err != nil {
		return res, err
	}
	_, err = h.dropUnusedBasicAuth(ctx, name)
	return res, err
}

// changeProtection runs change on the container's entry under the
// registry lock, after the owner check; change reports whether it wrote
// the entry, which is then recorded as request op. It returns the
// generation that must be applied for the host to show the entry as it is
// then: also when change wrote nothing, as a change still pending must be
// applied before the caller may rely on it. Call with the container's op
// lock held.
func (h *Host) changeProtection(ctx context.Context, op, name string, caller Caller, res *ProtectResult, change func(*registry.Container) (bool, error)) (uint64, error) {
	var gen uint64
	err := h.withRegistry(ctx, func() error {
		c, prev, err := h.entryFor(ctx, name, func(c *registry.Container) error {
			return caller.CheckOwner(h.Cfg.Access, "change", name, c.Owner)
		})
		if err != nil {
			return err
		}
		res.Container = c
		wrote, err := change(c)
		if err != nil {
			return err
		}
		if !wrote || h.sameHostPart(*prev, c) {
			// Nothing for the host: wait for what is pending anyway.
			w, err := h.readWanted()
			gen = w.Gen
			return err
		}
		if gen, err = h.bump(); err != nil {
			return err
		}
		// What a failed rebuild undoes.
		return h.recordRequest(op, name, gen, prev, nil)
	})
	return gen, err
}

// dropUnusedBasicAuth removes the container's password file unless its
// entry names a protect user, and says whether it kept it. Call with the
// container's op lock held, after the host stopped using the file.
func (h *Host) dropUnusedBasicAuth(ctx context.Context, name string) (kept bool, err error) {
	err = h.withRegistry(ctx, func() error {
		c, err := h.Reg.Get(name)
		if err == nil && c.ProtectUser != "" {
			kept = true
			return nil
		}
		if err != nil && !errors.Is(err, registry.ErrNotFound) {
			return err
		}
		return atomicfile.Remove(h.basicAuthPath(name))
	})
	return kept, err
}
