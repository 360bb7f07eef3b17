package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/internal/runner"
)

// Recovered is what the start of a command repaired.
type Recovered struct {
	// RolledBack lists containers whose interrupted operation was undone.
	RolledBack []string
}

// recoverOps undoes the operations whose process died: an intent whose
// op lock can be taken has no living owner. Call under the registry lock.
func (h *Host) recoverOps(ctx context.Context) (Recovered, error) {
	var rec Recovered
	if err := h.recoverRebuildIfIdle(ctx); err != nil {
		return rec, err
	}
	if err := h.adoptLegacyIntents(); err != nil {
		return rec, err
	}
	// Only operations in progress have an intent: the op locks, one per
	// container ever worked on, are in a directory of their own.
	names, err := recordNames(h.paths().intentsDir())
	if err != nil {
		return rec, err
	}
	for _, name := range names {
		l, ok, err := tryLock(h.paths().opLock(name))
		if err != nil {
			return rec, err
		}
		if !ok {
			continue // its process is alive
		}
		err = h.recoverOne(ctx, name)
		l.unlock()
		if err != nil {
			return rec, err
		}
		rec.RolledBack = append(rec.RolledBack, name)
	}
	if len(rec.RolledBack) > 0 {
		// Count what was put back: a rebuild may have applied the dead
		// operation's entry meanwhile, and a caller that does not bump
		// itself would leave the registry disagreeing with the wanted
		// and applied state, unnoticed.
		if _, err := h.bump(); err != nil {
			return rec, err
		}
	}
	return rec, h.recoverPurges(ctx)
}

// recoverOwn undoes an interrupted operation on name for a command that
// holds name's op lock: recoverOps leaves that intent alone (it cannot
// take the lock this process holds), yet its owner is dead, since a live
// one would hold the lock. Without this, an ensure re-run right after a
// killed one would take the half-created entry for an existing container
// (and its owner for the name's). Call under the registry lock.
func (h *Host) recoverOwn(ctx context.Context, name string) error {
	// An older devhost's intent, which adoptLegacyIntents leaves alone
	// while its op lock is held (by this process now).
	if err := h.adoptLegacyIntent(name); err != nil {
		return err
	}
	if _, err := os.Stat(h.paths().intent(name)); err != nil {
		return nil
	}
	if err := h.recoverOne(ctx, name); err != nil {
		return err
	}
	_, err := h.bump() // as recoverOps does
	return err
}

func (h *Host) recoverOne(ctx context.Context, name string) error {
	var in Intent
	ok, err := readJSON(h.paths().intent(name), &in)
	if err != nil || !ok {
		return err
	}
	if err := h.undo(ctx, in); err != nil {
		return fmt.Errorf("recover interrupted %s of %s: %w", in.Op, name, err)
	}
	return atomicfile.Remove(h.paths().intent(name))
}

// undo puts back everything an intent recorded: registry entry,
// provision.nix, profile generation and build record. Call under the
// registry lock, holding the container's op lock.
func (h *Host) undo(ctx context.Context, in Intent) error {
	name := in.Name
	switch {
	case in.New:
		if err := atomicfile.Remove(h.Reg.Path(name)); err != nil {
			return err
		}
	case in.PrevEntry != nil:
		if err := h.Reg.WriteEntry(name, []byte(*in.PrevEntry)); err != nil {
			return err
		}
	}
	prov := h.provisionPath(name)
	if in.PrevProvision == nil {
		if err := atomicfile.Remove(prov); err != nil {
			return err
		}
	} else if err := writePrivate(prov, []byte(*in.PrevProvision)); err != nil {
		return err
	}
	cur := h.profileTarget(name)
	switch {
	case in.PrevProfile == "":
		// Also when the profile link itself is missing: nix-env may have
		// died between creating a generation and pointing the profile at it.
		if err := os.RemoveAll(filepath.Dir(h.ProfilePath(name))); err != nil {
			return fmt.Errorf("remove profile: %w", err)
		}
	case in.PrevProfile != "" && cur != in.PrevProfile:
		n := ProfileGeneration(in.PrevProfile)
		argv := append(append([]string(nil), h.Cfg.Commands.NixEnv...), "-p", h.ProfilePath(name), "--switch-generation", fmt.Sprint(n))
		if _, err := h.Run.Run(ctx, runner.Cmd{Argv: argv}); err != nil {
			return fmt.Errorf("restore profile: %w", err)
		}
	}
	if in.PrevBuild == nil {
		if err := atomicfile.Remove(h.paths().buildRecord(name)); err != nil {
			return err
		}
	} else if err := writeJSON(h.paths().buildRecord(name), *in.PrevBuild, 0o644); err != nil {
		return err
	}
	return os.RemoveAll(h.paths().buildDir(name))
}

// sweep drops the records of applied requests and purges containers
// devhost built (they have a build record) that are neither in the
// registry nor in the applied state: a destroy whose process died after
// the rebuild, or a creation a failed rebuild rolled back. Containers
// being worked on (op lock held) are left alone.
func (h *Host) sweep(ctx context.Context) error {
	a, err := h.readApplied()
	if err != nil {
		return err
	}
	names, err := recordNames(filepath.Dir(h.paths().buildRecord("x")))
	if err != nil {
		return err
	}
	return h.withRegistry(ctx, func() error {
		if err := h.dropAppliedRequests(a.Gen); err != nil {
			return err
		}
		for _, name := range names {
			if _, err := os.Stat(h.Reg.Path(name)); err == nil {
				continue
			}
			if declared, err := h.declared(name); err != nil {
				return err
			} else if declared {
				continue
			}
			l, ok, err := tryLock(h.paths().opLock(name))
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			err = h.purge(ctx, name)
			l.unlock()
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// purge removes what is left of a container once no host declares it:
// its profile, root directory, provision.nix, basic auth password file and
// build record (the record last: it marks the container as devhost's to
// clean up). Its unit is stopped first: the containers are instances of
// NixOS' container@ template, which the host's switch leaves running when
// their declaration goes, so a destroy that died before its stop (or a
// new container a failed rebuild rolled back after machines.target
// started it) would otherwise lose its root directory while it runs.
// Destroy and cleanup stop the unit outside the registry lock first, and
// this stop then finds it stopped. Call under the registry lock.
func (h *Host) purge(ctx context.Context, name string) error {
	if err := h.stopUnit(ctx, name); err != nil {
		return fmt.Errorf("purge %s: %w", name, err)
	}
	for _, dir := range []string{filepath.Dir(h.ProfilePath(name)), filepath.Join(h.containersDir(), name), h.paths().buildDir(name)} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("purge %s: %w", name, err)
		}
	}
	if err := atomicfile.Remove(h.provisionPath(name)); err != nil {
		return err
	}
	if err := atomicfile.Remove(h.basicAuthPath(name)); err != nil {
		return err
	}
	if err := atomicfile.Remove(h.paths().buildRecord(name)); err != nil {
		return err
	}
	return atomicfile.Remove(h.paths().purgeMarker(name))
}

// recoverPurges finishes destroys whose process died after the host no
// longer declared the container, and drops the marker of a destroy a
// failed rebuild undid. Call under the registry lock.
func (h *Host) recoverPurges(ctx context.Context) error {
	ents, err := os.ReadDir(filepath.Dir(h.paths().purgeMarker("x")))
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(ents) == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if _, err := os.Stat(h.Reg.Path(name)); err == nil {
			if err := atomicfile.Remove(h.paths().purgeMarker(name)); err != nil {
				return err
			}
			continue
		}
		if declared, err := h.declared(name); err != nil || declared {
			return err // declared: the next rebuild's sweep removes it
		}
		l, ok, err := tryLock(h.paths().opLock(name))
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		err = h.purge(ctx, name)
		l.unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// recoverRebuildIfIdle settles the intent of a rebuild whose process died,
// when no rebuild runs now (the rebuild lock is only tried, never waited
// for, so this is safe under the registry lock).
func (h *Host) recoverRebuildIfIdle(ctx context.Context) error {
	l, ok, err := tryLock(h.paths().rebuildLock())
	if err != nil || !ok {
		return err
	}
	defer l.unlock()
	return h.recoverRebuild(ctx)
}

// adoptLegacyIntents moves the intents a devhost before intents/ left in
// ops/ (next to the op locks, one per container ever worked on) whose
// process died to intents/, where recovery finds them. The ops directory
// is listed only when it changed since the last listing that left no
// intent in it (ops.scanned records its identity then); this devhost
// writes none there, so that is once after an upgrade and after a new
// container's op lock is created. An intent whose op lock is held stays:
// its process, an older devhost, removes it when done, or dies and leaves
// it for a later command. Call under the registry lock.
func (h *Host) adoptLegacyIntents() error {
	fi, err := os.Stat(h.paths().opsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	id := registry.IDOf(fi)
	seen := fmt.Sprintf("%d %d\n", id.Ino, id.MTime)
	if b, err := os.ReadFile(h.paths().opsScanned()); err == nil && string(b) == seen {
		return nil
	}
	names, err := recordNames(h.paths().opsDir())
	if err != nil {
		return err
	}
	left := false
	for _, name := range names {
		l, free, err := tryLock(h.paths().opLock(name))
		if err != nil {
			return err
		}
		if !free {
			left = true
			continue
		}
		err = h.adoptLegacyIntent(name)
		l.unlock()
		if err != nil {
			return err
		}
	}
	if left {
		return nil
	}
	return atomicfile.WriteFile(h.paths().opsScanned(), []byte(seen), 0o644)
}

// adoptLegacyIntent moves name's intent from ops/ to intents/, if it has
// one there. Call under the registry lock, holding name's op lock.
func (h *Host) adoptLegacyIntent(name string) error {
	if _, err := os.Lstat(h.paths().legacyIntent(name)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := atomicfile.PrivateDir(h.paths().intentsDir(), privateDirPerm); err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	if err := os.Rename(h.paths().legacyIntent(name), h.paths().intent(name)); err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	return atomicfile.SyncDir(h.paths().intentsDir())
}

// removeRegistryTemps removes the temporary files of atomic writes whose
// process died in the directories whose every file is written under the
// registry lock. Each has an entry per container: withRegistry calls it
// only when the previous holder died inside its section (a temporary
// file's writer holds the section), Sync and Cleanup always. Call under
// the registry lock.
func (h *Host) removeRegistryTemps() error {
	for _, dir := range []string{h.paths().intentsDir(), h.paths().opsDir(), filepath.Dir(h.paths().buildRecord("x")), filepath.Dir(h.paths().purgeMarker("x")),
		filepath.Dir(h.provisionPath("x")), h.Reg.Dir(), h.paths().root} {
		if err := removeStaleTemps(dir); err != nil {
			return err
		}
	}
	return nil
}

// removeStaleTemps removes the ".<name>.tmp*" files atomic writes leave
// when their process dies between creating and renaming them. Call only
// while holding the lock that guards writes to dir.
func removeStaleTemps(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp") {
			if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("lifecycle: %w", err)
			}
		}
	}
	return nil
}
