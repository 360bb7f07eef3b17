package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/runner"
)

// RebuildError is a failed host rebuild, reported to every request whose
// change it contained. Those changes were rolled back.
type RebuildError struct {
	Failure Failure
}

func (e *RebuildError) Error() string {
	msg := "host rebuild failed; the containers it changed were rolled back to their last applied state"
	if e.Failure.Log != "" {
		msg += " (log: " + e.Failure.Log + ")"
	}
	return msg + ":\n" + e.Failure.Error
}

// ApplyStats says what waiting for a generation took.
type ApplyStats struct {
	// Rebuilt is true when this process ran the host rebuild command.
	Rebuilt bool
	// Wrote is true when this process wrote the generated set.
	Wrote bool
	// Gen is the applied generation afterwards.
	Gen uint64
}

// Apply waits until generation gen is applied: it returns as soon as a
// rebuild whose snapshot contains gen succeeded, runs that rebuild itself
// when nobody else does, and returns the *RebuildError of a failed rebuild
// that contained gen.
func (h *Host) Apply(ctx context.Context, gen uint64) (ApplyStats, error) {
	var st ApplyStats
	for {
		a, err := h.readApplied()
		if err != nil {
			return st, err
		}
		if f, err := h.failureCovering(gen); err != nil || f != nil {
			if err != nil {
				return st, err
			}
			return st, &RebuildError{Failure: *f}
		}
		if a.Gen >= gen {
			st.Gen = a.Gen
			return st, nil
		}
		rl, err := lock(ctx, h.paths().rebuildLock())
		if err != nil {
			return st, err
		}
		err = h.rebuildLocked(ctx, gen, &st)
		rl.unlock()
		if err != nil {
			return st, err
		}
	}
}

// failureCovering finds a recorded failed rebuild that contained gen.
func (h *Host) failureCovering(gen uint64) (*Failure, error) {
	var fs []Failure
	if _, err := readJSON(h.paths().failures(), &fs); err != nil {
		return nil, err
	}
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].From < gen && gen <= fs[i].To {
			return &fs[i], nil
		}
	}
	return nil, nil
}

// rebuildLocked runs one rebuild for everything wanted now, unless the
// generation was applied (or failed) while this process waited for the
// lock. Call with the rebuild lock held.
func (h *Host) rebuildLocked(ctx context.Context, gen uint64, st *ApplyStats) error {
	if err := h.recoverRebuild(); err != nil {
		return err
	}
	a, err := h.readApplied()
	if err != nil {
		return err
	}
	if f, err := h.failureCovering(gen); err != nil || f != nil {
		return err // the caller's loop reports f
	}
	if a.Gen >= gen {
		return nil
	}

	// Snapshot under the registry lock.
	var (
		w      Wanted
		snap   map[string]string
		builds map[string]BuildRecord
		r      *Rendered
	)
	err = h.withRegistry(ctx, func() error {
		var err error
		if w, err = h.readWanted(); err != nil {
			return err
		}
		if w.Gen < gen {
			return fmt.Errorf("lifecycle: the wanted generation went back from %d to %d (was %s removed?); run `devhost status`", gen, w.Gen, h.paths().wanted())
		}
		if snap, r, err = h.renderRegistry(); err != nil {
			return err
		}
		if builds, err = h.buildRecords(snap); err != nil {
			return err
		}
		if r.HostDigest != w.Digest {
			// A change that did not bump (it cannot happen through this
			// package, but a person may edit an entry): count it.
			w.Gen++
			w.Digest = r.HostDigest
			return writeJSON(h.paths().wanted(), w, 0o644)
		}
		return nil
	})
	if err != nil {
		return err
	}

	logPath := filepath.Join(h.paths().logDir(), fmt.Sprintf("rebuild-%s-gen%d.log", h.now().Format("20060102T150405.000Z"), w.Gen))
	intent := RebuildIntent{PID: os.Getpid(), Gen: w.Gen, Digest: r.HostDigest, Log: logPath, Start: h.now()}
	if err := writeJSON(h.paths().rebuildIntent(), intent, 0o644); err != nil {
		return err
	}
	if err := h.Render.Write(r); err != nil {
		return err
	}
	st.Wrote = true
	var runErr error
	if r.HostDigest != a.HostDigest || a.Forced {
		st.Rebuilt = true
		runErr = h.runRebuild(ctx, logPath)
	}
	if runErr == nil {
		next := Applied{Gen: w.Gen, Digest: r.Set.Digest(), HostDigest: r.HostDigest, Entries: snap, Builds: builds, Time: h.now()}
		if err := writeJSON(h.paths().applied(), next, 0o644); err != nil {
			return err
		}
		if err := atomicfile.Remove(h.paths().rebuildIntent()); err != nil {
			return err
		}
		return h.sweep(ctx)
	}

	// Failure: roll back what this rebuild changed, restore the applied set.
	// The failure is recorded first: a request covered by it must never
	// be told it succeeded, even if this process dies while rolling back
	// (the changes then stay in the registry and the next rebuild retries
	// them).
	f := Failure{From: a.Gen, To: w.Gen, Error: runErr.Error(), Log: logPath, Time: h.now()}
	if err := h.recordFailure(f); err != nil {
		return err
	}
	// The rollback must run even when ctx ended (a cancelled or timed out
	// caller is a common cause of the failure): a cancelled context would
	// fail its nix-env and leave the failed changes in place.
	ctx = context.WithoutCancel(ctx)
	if err := h.rollback(ctx, a, snap, r); err != nil {
		return fmt.Errorf("%w; rolling back failed too: %w", &RebuildError{Failure: f}, err)
	}
	if err := atomicfile.Remove(h.paths().rebuildIntent()); err != nil {
		return err
	}
	return h.sweep(ctx)
}

// runRebuild runs the host rebuild command with its output in logPath.
func (h *Host) runRebuild(ctx context.Context, logPath string) error {
	if err := atomicfile.PrivateDir(filepath.Dir(logPath), privateDirPerm); err != nil {
		return fmt.Errorf("rebuild log: %w", err)
	}
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("rebuild log: %w", err)
	}
	defer func() { _ = lf.Close() }()
	fmt.Fprintf(lf, "# %s: %s\n", h.now().Format(time.RFC3339), strings.Join(h.Cfg.Commands.Rebuild, " "))
	_, err = h.Run.Run(ctx, runner.Cmd{Argv: h.Cfg.Commands.Rebuild, Log: lf})
	if err != nil {
		fmt.Fprintf(lf, "# failed: %v\n", err)
		return err
	}
	fmt.Fprintf(lf, "# succeeded\n")
	return nil
}

func (h *Host) recordFailure(f Failure) error {
	var fs []Failure
	if _, err := readJSON(h.paths().failures(), &fs); err != nil {
		return err
	}
	fs = append(fs, f)
	if len(fs) > maxFailures {
		fs = fs[len(fs)-maxFailures:]
	}
	return writeJSON(h.paths().failures(), fs, 0o644)
}

// rollback puts back, in the registry, every container whose host side
// the failed snapshot changed compared to the applied state, unless the
// entry changed again since the snapshot (a later request owns it then).
// Profiles of those containers go back to their applied generation, and
// the live set becomes the applied one again.
func (h *Host) rollback(ctx context.Context, a Applied, snap map[string]string, r *Rendered) error {
	appliedCs, err := h.decodeEntries(a.Entries)
	if err != nil {
		return err
	}
	ar, err := h.Render.Render(appliedCs)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for n := range snap {
		names[n] = true
	}
	for n := range a.Entries {
		names[n] = true
	}
	return h.withRegistry(ctx, func() error {
		for n := range names {
			if ar.hostPart(n) == r.hostPart(n) {
				continue
			}
			cur, err := readOptional(h.Reg.Path(n))
			if err != nil {
				return err
			}
			snapSrc, inSnap := snap[n]
			if (cur == nil) != !inSnap || cur != nil && string(cur) != snapSrc {
				continue // changed since the snapshot
			}
			if old, ok := a.Entries[n]; ok {
				if err := h.Reg.WriteEntry(n, []byte(old)); err != nil {
					return err
				}
				if err := h.restoreProfile(ctx, n, a.Builds[n]); err != nil {
					return err
				}
			} else if err := atomicfile.Remove(h.Reg.Path(n)); err != nil {
				return err
			}
		}
		if err := h.Render.Write(ar); err != nil {
			return err
		}
		gen, err := h.bump()
		if err != nil {
			return err
		}
		// When nothing but the rolled back changes was pending, the
		// registry is the applied state again: say so, or it would look
		// pending.
		w, err := h.readWanted()
		if err != nil || w.Digest != a.HostDigest {
			return err
		}
		a.Gen = gen
		return writeJSON(h.paths().applied(), a, 0o644)
	})
}

// restoreProfile points a container's profile back at the generation rec
// records, and restores rec as its build record.
func (h *Host) restoreProfile(ctx context.Context, name string, rec BuildRecord) error {
	if rec.Profile == "" {
		return nil
	}
	if cur := h.profileTarget(name); cur != rec.Profile {
		n := ProfileGeneration(rec.Profile)
		if n == 0 {
			return fmt.Errorf("profile %s: cannot restore %q", h.ProfilePath(name), rec.Profile)
		}
		argv := append(append([]string(nil), h.Cfg.Commands.NixEnv...), "-p", h.ProfilePath(name), "--switch-generation", fmt.Sprint(n))
		if _, err := h.Run.Run(ctx, runner.Cmd{Argv: argv}); err != nil {
			return fmt.Errorf("restore profile of %s: %w", name, err)
		}
	}
	return writeJSON(h.paths().buildRecord(name), rec, 0o644)
}

// buildRecords reads the build record of every entry in snap.
func (h *Host) buildRecords(snap map[string]string) (map[string]BuildRecord, error) {
	out := make(map[string]BuildRecord, len(snap))
	for n := range snap {
		var rec BuildRecord
		ok, err := readJSON(h.paths().buildRecord(n), &rec)
		if err != nil {
			return nil, err
		}
		if ok {
			out[n] = rec
		}
	}
	return out, nil
}

// recoverRebuild handles a rebuild whose process died: its outcome on the
// host is unknown, so the next rebuild runs even when the host side looks
// unchanged. Call with the rebuild lock held.
func (h *Host) recoverRebuild() error {
	if err := removeStaleTemps(h.paths().rebuildDir()); err != nil {
		return err
	}
	var ri RebuildIntent
	ok, err := readJSON(h.paths().rebuildIntent(), &ri)
	if err != nil || !ok {
		return err
	}
	a, err := h.readApplied()
	if err != nil {
		return err
	}
	if a.Gen >= ri.Gen && a.Digest != "" {
		// It died after recording its success: nothing is unknown.
		return atomicfile.Remove(h.paths().rebuildIntent())
	}
	a.Forced = true
	if err := writeJSON(h.paths().applied(), a, 0o644); err != nil {
		return err
	}
	return atomicfile.Remove(h.paths().rebuildIntent())
}

// bumpFresh is bump for a request that must not be answered with an older
// request's failure (Sync, Cleanup). The registry may still hold the
// changes of a failed rebuild whose process died before rolling them
// back: when nothing changed since, bump returns their generation, which
// Apply answers with that old failure, so `devhost apply` and the nightly
// cleanup would fail forever. The generation is then counted anew. Call
// under the registry lock.
func (h *Host) bumpFresh() (uint64, error) {
	gen, err := h.bump()
	if err != nil {
		return 0, err
	}
	f, err := h.failureCovering(gen)
	if err != nil || f == nil {
		return gen, err
	}
	w, err := h.readWanted()
	if err != nil {
		return 0, err
	}
	w.Gen++
	return w.Gen, writeJSON(h.paths().wanted(), w, 0o644)
}

// errBusy marks a container whose operation lock another process holds.
var errBusy = errors.New("another devhost command is working on this container")

// Sync repairs what interrupted commands left, counts any registry change
// made behind devhost's back (a hand-edited entry, changed templates or
// host configuration), and applies everything pending in one coalesced
// rebuild. It is `devhost apply` (and `devhost render` without --out):
// the live set is only ever written by a rebuild, from a registry
// snapshot, under the rebuild lock.
func (h *Host) Sync(ctx context.Context, caller Caller) (ApplyStats, error) {
	if !caller.Admin(h.Cfg.Access) {
		return ApplyStats{}, &DeniedError{User: caller.User, What: "apply the registry",
			Why: "only root and members of the admin group " + h.Cfg.Access.AdminGroup + " may"}
	}
	var gen uint64
	err := h.withRegistry(ctx, func() error {
		if _, err := h.recoverOps(ctx); err != nil {
			return err
		}
		var err error
		gen, err = h.bumpFresh()
		return err
	})
	if err != nil {
		return ApplyStats{}, err
	}
	return h.Apply(ctx, gen)
}
