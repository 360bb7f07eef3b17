package lifecycle

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/internal/runner"
)

// RebuildError is a failed host rebuild, reported to every request whose
// change it contained. The host got its previous generated set back; the
// requests' changes were rolled back, changes without a request (hand
// edits, imports) stay in the registry, marked with the failure.
type RebuildError struct {
	Failure Failure
}

func (e *RebuildError) Error() string {
	f := e.Failure
	msg := "host rebuild failed; the host is back on its previously applied set"
	if f.Log != "" {
		msg += " (log: " + f.Log + ")"
	}
	if len(f.RolledBack) > 0 {
		msg += "\nrolled back, as the requests that changed them failed: " + nameList(f.RolledBack)
	}
	if f.System != "" {
		msg += "\n" + f.System
	}
	if len(f.Kept) > 0 {
		msg += "\nkept in the registry but not applied (their entries record the failure as last_error; fix the cause, then run `devhost apply`): " + nameList(f.Kept)
	}
	return msg + "\nwhy:\n" + f.Error
}

// maxListed bounds the names an error lists: a changed template changes
// every container's declaration.
const maxListed = 20

// nameList joins names, at most maxListed of them.
func nameList(names []string) string {
	if len(names) <= maxListed {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxListed], ", "), len(names)-maxListed)
}

// ApplyStats says what waiting for a generation took.
type ApplyStats struct {
	// Rebuilt is true when this process ran the host rebuild command.
	Rebuilt bool
	// Wrote is true when this process wrote the generated set.
	Wrote bool
	// Gen is the applied generation afterwards.
	Gen uint64
	// Restarted are the running containers this process restarted after
	// its rebuild because their addresses or limits changed without a
	// request of their own (a changed host configuration, an admin's
	// edit of their entries): the host's switch leaves the running
	// instances of NixOS' container@ template as they are. An ensure
	// restarts its own container itself.
	Restarted []string
	// RestartErr says why restarting them failed ("" when it did not).
	RestartErr string
}

// Apply waits until generation gen is applied: it returns as soon as a
// rebuild whose snapshot contains gen succeeded, runs that rebuild itself
// when nobody else does, and returns the *RebuildError of a failed rebuild
// that contained gen.
func (h *Host) Apply(ctx context.Context, gen uint64) (ApplyStats, error) {
	var st ApplyStats
	if err := h.restartPendingIfIdle(ctx, &st); err != nil {
		return st, err
	}
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
		rl, err := h.lockRebuild(ctx, gen)
		if err != nil {
			return st, err
		}
		if rl == nil {
			continue // gen was applied meanwhile
		}
		err = h.rebuildLocked(ctx, gen, &st)
		rl.unlock()
		if err != nil {
			return st, err
		}
	}
}

// restartBatch bounds the units one systemctl call restarts (its argv).
const restartBatch = 100

// notePendingRestarts adds names to the containers a rebuild restarts
// (rebuild/restarts.json), before the rebuild is recorded as applied: a
// process that dies after that record and before the restarts leaves
// them to the next Apply (restartPendingIfIdle), one that dies before it
// to the forced rebuild that follows, which finds the same changes. Call
// with the rebuild lock held.
func (h *Host) notePendingRestarts(names []string) error {
	if len(names) == 0 {
		return nil
	}
	var pending []string
	if _, err := readJSON(h.paths().pendingRestarts(), &pending); err != nil {
		return err
	}
	for _, n := range names {
		if !slices.Contains(pending, n) {
			pending = append(pending, n)
		}
	}
	slices.Sort(pending)
	return writeJSON(h.paths().pendingRestarts(), pending, 0o644)
}

// restartPendingIfIdle runs the restarts a dead process left pending,
// when no rebuild runs (a running one does them itself).
func (h *Host) restartPendingIfIdle(ctx context.Context, st *ApplyStats) error {
	if _, err := os.Stat(h.paths().pendingRestarts()); err != nil {
		return nil
	}
	l, ok, err := tryLock(h.paths().rebuildLock())
	if err != nil || !ok {
		return err
	}
	defer l.unlock()
	h.restartPending(ctx, st)
	return nil
}

// restartPending restarts the running containers of rebuild/restarts.json,
// if there is one (try-restart leaves one that was stopped meanwhile
// stopped), and removes it. A failure is reported in st, not as the caller's error: the rebuild,
// and the caller's own change, stand; and as a failed restart would fail
// again, the record goes with it. Only an interrupted caller (its context
// ended) leaves the record for the next Apply. Call with the rebuild lock
// held: the next rebuild's switch waits for these restarts, as a NixOS
// switch waits for the units it restarts.
func (h *Host) restartPending(ctx context.Context, st *ApplyStats) {
	var names []string
	if ok, err := readJSON(h.paths().pendingRestarts(), &names); err != nil || !ok {
		if err != nil {
			st.RestartErr = err.Error()
		}
		return
	}
	for len(names) > 0 {
		n := min(len(names), restartBatch)
		argv := append(append([]string(nil), h.Cfg.Commands.Systemctl...), "try-restart")
		for _, name := range names[:n] {
			argv = append(argv, unit(name))
		}
		if _, err := h.Run.Run(ctx, runner.Cmd{Argv: argv}); err != nil {
			st.RestartErr = fmt.Sprintf("restart containers whose addresses or limits changed: %v", err)
			if ctx.Err() != nil {
				return
			}
			break
		}
		st.Restarted = append(st.Restarted, names[:n]...)
		names = names[n:]
	}
	if err := atomicfile.Remove(h.paths().pendingRestarts()); err != nil && st.RestartErr == "" {
		st.RestartErr = err.Error()
	}
}

// unitRestarts lists the containers of a successful rebuild of plan whose
// running unit must be restarted: their host file's UnitPart changed, they
// still exist and run, and no ensure covered by the rebuild (reqs) will
// restart them itself.
func (h *Host) unitRestarts(plan *setPlan, reqs map[string]Request) []string {
	var out []string
	for _, n := range plan.hostChanged() {
		if rq, ok := reqs[n]; ok && rq.Op == "ensure" {
			continue
		}
		f := generator.HostFile(n)
		old, cur := plan.cur[f], plan.files[f]
		if old == nil || cur == nil || generator.UnitPart(old) == generator.UnitPart(cur) {
			continue
		}
		if c, err := h.Reg.Get(n); err != nil || c.State != registry.Running {
			continue
		}
		out = append(out, n)
	}
	return out
}

// lockRebuild takes the rebuild lock. Found free (no rebuild runs), it is
// held for the batch window before the rebuild reads the registry: the
// requests committed meanwhile share this rebuild instead of each waiting
// for one more. While requests keep arriving (the wanted generation grew
// during the last window) it is held for another window, up to
// maxBatchWindows in all: a burst of requests whose commits spread over
// more than one window (many processes on few cores) shares one rebuild
// rather than being cut in two at an arbitrary instant, while a lone
// request still waits one window. Found taken, it is waited for, and the
// requests committed during that rebuild are batched already; the wait
// ends without the lock (nil) as soon as generation gen is applied. A
// waiter whose change the running rebuild applies must not have to win
// the lock to learn that: flock grants it in no order, and when a request
// committed during that rebuild takes it first, it runs the next rebuild
// at once, and the waiter would wait through that one too (and the next,
// while it keeps losing). A failed rebuild is still waited for to the
// end: its rollback, under the lock, is what the waiter then reports.
func (h *Host) lockRebuild(ctx context.Context, gen uint64) (*fileLock, error) {
	// Requests counted from here on are the ones arriving in the window.
	last, err := h.readWanted()
	if err != nil {
		return nil, err
	}
	l, free, err := tryLock(h.paths().rebuildLock())
	if err != nil {
		return nil, err
	}
	if !free {
		return lockUnless(ctx, h.paths().rebuildLock(), func() (bool, error) {
			a, err := h.readApplied()
			return a.Gen >= gen, err
		})
	}
	d := h.Cfg.Commands.RebuildBatchWindow
	if d <= 0 {
		return l, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	tick := t.C
	if h.batchTick != nil {
		tick = nil
	}
	for range maxBatchWindows {
		select {
		case <-tick:
		case <-h.batchTick:
		case <-ctx.Done():
			l.unlock()
			return nil, ctx.Err()
		}
		w, err := h.readWanted()
		if err != nil {
			l.unlock()
			return nil, err
		}
		if w.Gen == last.Gen {
			break
		}
		last = w
		t.Reset(d)
	}
	return l, nil
}

// maxBatchWindows bounds how long a burst of requests holds back its
// rebuild: at most this many batch windows.
const maxBatchWindows = 4

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
	if err := h.recoverRebuild(ctx); err != nil {
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

	// Snapshot under the registry lock: only what changed is read.
	var (
		w    Wanted
		plan *setPlan
		reqs map[string]Request
	)
	err = h.withRegistry(ctx, func() error {
		var err error
		if w, err = h.readWanted(); err != nil {
			return err
		}
		if w.Gen < gen {
			return fmt.Errorf("lifecycle: the wanted generation went back from %d to %d (was %s removed?); run `devhost status`", gen, w.Gen, h.paths().wanted())
		}
		_, full := os.Stat(h.paths().fullRequest())
		if plan, err = h.planSet(full == nil); err != nil {
			return err
		}
		if reqs, err = h.requests(a.Gen, w.Gen); err != nil {
			return err
		}
		return atomicfile.Remove(h.paths().fullRequest())
	})
	if err != nil {
		return err
	}

	logPath := filepath.Join(h.paths().logDir(), fmt.Sprintf("rebuild-%s-gen%d.log", h.now().Format("20060102T150405.000Z"), w.Gen))
	intent := RebuildIntent{PID: os.Getpid(), Gen: w.Gen, Log: logPath, Start: h.now(), Mark: rand.Text(), System: h.systemTarget()}
	if err := writeJSON(h.paths().rebuildIntent(), intent, 0o644); err != nil {
		return err
	}
	if err := h.writeSet(plan); err != nil {
		return err
	}
	st.Wrote = len(plan.files) > 0
	var runErr error
	if plan.changesHost() || a.Forced {
		st.Rebuilt = true
		runErr = h.runLogged(ctx, intent, h.Cfg.Commands.Rebuild)
	}
	if runErr == nil {
		if st.Rebuilt {
			if err := h.notePendingRestarts(h.unitRestarts(plan, reqs)); err != nil {
				return err
			}
		}
		if err := writeJSON(h.paths().applied(), Applied{Gen: w.Gen, Time: h.now()}, 0o644); err != nil {
			return err
		}
		if err := h.commitSet(plan); err != nil {
			return err
		}
		if err := atomicfile.Remove(h.paths().rebuildIntent()); err != nil {
			return err
		}
		if err := h.clearMarks(ctx, plan.snap); err != nil {
			return err
		}
		if err := h.sweep(ctx); err != nil {
			return err
		}
		h.restartPending(ctx, st)
		return nil
	}
	return h.rebuildFailed(ctx, a, w, plan, reqs, intent, runErr)
}

// rebuildFailed handles a failed rebuild of plan: it restores the applied
// set, undoes the requests it covered, marks what it contained without a
// request. The failure is recorded first: a request covered by it must
// never be told it succeeded, even if this process dies while rolling back
// (the changes then stay in the registry and the next rebuild retries
// them). Call with the rebuild lock held.
func (h *Host) rebuildFailed(ctx context.Context, a Applied, w Wanted, plan *setPlan, reqs map[string]Request, intent RebuildIntent, runErr error) error {
	f := Failure{From: a.Gen, To: w.Gen, Error: runErr.Error(), Log: intent.Log, Time: h.now(), RolledBack: sortedNames(reqs)}
	for _, n := range plan.hostChanged() {
		if _, ok := reqs[n]; !ok {
			f.Kept = append(f.Kept, n)
		}
	}
	if err := h.recordFailure(f); err != nil {
		return err
	}
	// The rollback must run even when ctx ended (a cancelled or timed out
	// caller is a common cause of the failure): a cancelled context would
	// fail its nix-env and leave the failed changes in place.
	ctx = context.WithoutCancel(ctx)
	if what, err := h.restoreSystem(ctx, intent); what != "" || err != nil {
		f.System = what
		if err != nil {
			// The host's state is unknown: the next rebuild runs even
			// when the host side looks unchanged.
			f.System = fmt.Sprintf("the failed rebuild switched the host's system, and switching back to %s failed too (the next rebuild runs in any case): %v", intent.System, err)
			a.Forced = true
			if err := writeJSON(h.paths().applied(), a, 0o644); err != nil {
				return err
			}
		}
		if err := h.updateFailure(f); err != nil {
			return err
		}
	}
	if err := h.rollback(ctx, a, plan.snap, reqs, f); err != nil {
		return fmt.Errorf("%w; rolling back failed too: %w", &RebuildError{Failure: f}, err)
	}
	if err := atomicfile.Remove(h.paths().rebuildIntent()); err != nil {
		return err
	}
	return h.sweep(ctx)
}

// runLogged runs argv, the host rebuild command or the activation of the
// previous system, with its output in the intent's log. The command runs
// in a process group of its own, recorded in the intent as soon as it
// started: when this process is killed, its direct child dies with it
// (parent-death signal), and the next rebuild kills what the child started
// before it begins (recoverRebuild). What a command that ended leaves in
// its group is killed at once.
func (h *Host) runLogged(ctx context.Context, intent RebuildIntent, argv []string) error {
	logPath := intent.Log
	if err := atomicfile.PrivateDir(filepath.Dir(logPath), privateDirPerm); err != nil {
		return fmt.Errorf("rebuild log: %w", err)
	}
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("rebuild log: %w", err)
	}
	defer func() { _ = lf.Close() }()
	fmt.Fprintf(lf, "# %s: %s\n", h.now().Format(time.RFC3339), strings.Join(argv, " "))
	started := func(pgid int) error {
		intent.PGID = pgid
		return writeJSON(h.paths().rebuildIntent(), intent, 0o644)
	}
	_, err = h.Run.Run(ctx, runner.Cmd{Argv: argv, Env: []string{rebuildMark(intent.Mark)}, Log: lf, Started: started, KillGroupAfter: true})
	if err != nil {
		fmt.Fprintf(lf, "# failed: %v\n", err)
		return err
	}
	fmt.Fprintf(lf, "# succeeded\n")
	return nil
}

// systemTarget is the store path the host's system profile points at (""
// when none is configured or it does not resolve).
func (h *Host) systemTarget() string {
	if h.Cfg.SystemProfile == "" {
		return ""
	}
	p, err := filepath.EvalSymlinks(h.Cfg.SystemProfile)
	if err != nil {
		return ""
	}
	return p
}

// restoreSystem puts the host's previous system back when the failed
// rebuild switched the system profile away from it (the new system was
// built and installed, then its activation failed): the profile gets a
// generation pointing at the previous system, which is activated again,
// as `nixos-rebuild switch --rollback` does. It says what it did ("" when
// the profile did not move, as after an evaluation or build error).
func (h *Host) restoreSystem(ctx context.Context, intent RebuildIntent) (string, error) {
	if intent.System == "" || h.systemTarget() == intent.System {
		return "", nil
	}
	argv := append(append([]string(nil), h.Cfg.Commands.NixEnv...), "-p", h.Cfg.SystemProfile, "--set", intent.System)
	if _, err := h.Run.Run(ctx, runner.Cmd{Argv: argv}); err != nil {
		return "", fmt.Errorf("point %s back at %s: %w", h.Cfg.SystemProfile, intent.System, err)
	}
	ri := intent
	ri.Log = strings.TrimSuffix(intent.Log, ".log") + "-restore.log"
	if err := h.runLogged(ctx, ri, []string{filepath.Join(intent.System, "bin", "switch-to-configuration"), "switch"}); err != nil {
		return "", fmt.Errorf("activate %s again (log: %s): %w", intent.System, ri.Log, err)
	}
	return fmt.Sprintf("the failed rebuild had switched the host's system; it runs the previous one again, %s (log: %s)", intent.System, ri.Log), nil
}

// updateFailure replaces the recorded failure of the same generations
// with f. Call with the rebuild lock held.
func (h *Host) updateFailure(f Failure) error {
	var fs []Failure
	if _, err := readJSON(h.paths().failures(), &fs); err != nil {
		return err
	}
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].From == f.From && fs[i].To == f.To {
			fs[i] = f
			return writeJSON(h.paths().failures(), fs, 0o644)
		}
	}
	return h.recordFailure(f)
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

// rollback undoes a failed rebuild of snap: the requests it covered (reqs)
// are undone in the registry, with their profiles, unless their entries
// changed since; the entries it contained without a request (f.Kept) stay
// as they are and record the failure as their last error; the live set
// becomes the applied one again.
func (h *Host) rollback(ctx context.Context, a Applied, snap map[string]string, reqs map[string]Request, f Failure) error {
	return h.withRegistry(ctx, func() error {
		for _, n := range sortedNames(reqs) {
			if _, err := h.undoRequest(ctx, reqs[n]); err != nil {
				return err
			}
		}
		if err := h.mark(f, snap); err != nil {
			return err
		}
		if err := h.undoSet(); err != nil {
			return err
		}
		gen, err := h.bump()
		if err != nil {
			return err
		}
		// When nothing but the rolled back changes was pending, the
		// registry is the applied state again: say so, or it would look
		// pending.
		p, err := h.planSet(false)
		if err != nil || len(p.files) > 0 {
			return err
		}
		a.Gen = gen
		return writeJSON(h.paths().applied(), a, 0o644)
	})
}

// markPrefix starts the last error mark writes, so that clearMarks
// clears only its own marks, never another error a container recorded.
const markPrefix = "host rebuild of "

// mark records f as the last error of the entries it kept that are still
// as the failed rebuild saw them (snap; a later request's entry is not
// this failure's), and remembers them (rebuild/marked.json) so the next
// successful rebuild clears the marks again. Call under the registry lock,
// holding the rebuild lock.
func (h *Host) mark(f Failure, snap map[string]string) error {
	if len(f.Kept) == 0 {
		return nil
	}
	var marked []string
	if _, err := readJSON(h.paths().marked(), &marked); err != nil {
		return err
	}
	// setLastError keeps the end of a long message; the start must stay.
	cause := f.Error
	if len(cause) > 3000 {
		cause = "…" + strings.ToValidUTF8(cause[len(cause)-3000:], "")
	}
	why := fmt.Errorf(markPrefix+"%s failed; this entry is kept but not applied, the host runs its previous declaration (log: %s): %s",
		f.Time.UTC().Format(time.RFC3339), f.Log, cause)
	for _, n := range f.Kept {
		cur, err := readOptional(h.Reg.Path(n))
		if err != nil {
			return err
		}
		if src, ok := snap[n]; !ok || cur == nil || string(cur) != src {
			continue
		}
		if err := h.setLastError(n, why); err != nil {
			return err
		}
		if !slices.Contains(marked, n) {
			marked = append(marked, n)
		}
	}
	return writeJSON(h.paths().marked(), marked, 0o644)
}

// clearMarks clears the last error mark wrote into entries that the
// successful rebuild of snap applied as they are. Call holding the
// rebuild lock.
func (h *Host) clearMarks(ctx context.Context, snap map[string]string) error {
	var marked []string
	if ok, err := readJSON(h.paths().marked(), &marked); err != nil || !ok {
		return err
	}
	return h.withRegistry(ctx, func() error {
		for _, n := range marked {
			cur, err := readOptional(h.Reg.Path(n))
			if err != nil {
				return err
			}
			if cur == nil || string(cur) != snap[n] {
				continue // gone, or changed since: not what was applied
			}
			c, err := h.Reg.Get(n)
			if err != nil {
				return err
			}
			if strings.HasPrefix(c.LastError, markPrefix) {
				c.LastError = ""
				if err := h.Reg.Put(c); err != nil {
					return err
				}
			}
		}
		return atomicfile.Remove(h.paths().marked())
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

// killGroupTimeout bounds the wait for a killed rebuild's processes.
const killGroupTimeout = 30 * time.Second

// rebuildMark is the environment entry the rebuild command and what it
// starts carry: the next rebuild finds them by it even when this process
// died before it could record the command's process group.
func rebuildMark(mark string) string {
	if mark == "" {
		return ""
	}
	return "DEVHOST_REBUILD=" + mark
}

// recoverRebuild handles a rebuild whose process died: what is left of
// its command's process group is killed, and as its outcome on the host
// is unknown, the next rebuild runs even when the host side looks
// unchanged. Call with the rebuild lock held.
func (h *Host) recoverRebuild(ctx context.Context) error {
	if err := removeStaleTemps(h.paths().rebuildDir()); err != nil {
		return err
	}
	var ri RebuildIntent
	ok, err := readJSON(h.paths().rebuildIntent(), &ri)
	if err != nil || !ok {
		return err
	}
	if ri.PGID > 1 || ri.Mark != "" {
		// Its process died, perhaps killed, and its child with it; a
		// grandchild may still run and must be gone before the next
		// rebuild starts.
		if err := runner.KillGroup(ctx, ri.PGID, rebuildMark(ri.Mark), killGroupTimeout); err != nil {
			return fmt.Errorf("lifecycle: the interrupted rebuild of generation %d: %w", ri.Gen, err)
		}
	}
	a, err := h.readApplied()
	if err != nil {
		return err
	}
	if a.Gen >= ri.Gen && !a.Time.IsZero() {
		// It died after recording its success: nothing is unknown. The
		// set is the new one; the index of what it was written from may
		// be the old one, so it goes (the next rebuild compares all).
		if _, err := os.Stat(h.paths().setJournal()); err == nil {
			if err := atomicfile.Remove(h.paths().setIndex()); err != nil {
				return err
			}
			if err := atomicfile.Remove(h.paths().setJournal()); err != nil {
				return err
			}
		}
		return atomicfile.Remove(h.paths().rebuildIntent())
	}
	// The set goes back to the applied one (a patch it was writing, or
	// had written, is undone), and the next rebuild runs whatever it
	// finds, as the host's state is unknown.
	if err := h.undoSet(); err != nil {
		return err
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

// pendingGen is the generation Sync waits for: the applied one when
// nothing is to do, else one counted anew (bumpFresh) — something is
// pending, a rebuild is forced, the registry differs from the live set, or
// a full render was asked for.
// Call under the registry lock.
func (h *Host) pendingGen(full bool) (uint64, error) {
	if !full {
		w, err := h.readWanted()
		if err != nil {
			return 0, err
		}
		a, err := h.readApplied()
		if err != nil {
			return 0, err
		}
		if w.Gen <= a.Gen && !a.Forced {
			p, err := h.planSet(false)
			if err != nil || len(p.files) == 0 {
				return a.Gen, err
			}
		}
	}
	return h.bumpFresh()
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
	return h.sync(ctx, caller, false)
}

// SyncFull is Sync with a rebuild that renders the whole registry and
// makes the live set exactly that render (`devhost apply --full`), rather
// than only the containers whose entries changed since the set was
// written: for a set changed by hand, or to check that the two agree.
func (h *Host) SyncFull(ctx context.Context, caller Caller) (ApplyStats, error) {
	return h.sync(ctx, caller, true)
}

func (h *Host) sync(ctx context.Context, caller Caller, full bool) (ApplyStats, error) {
	if !caller.Admin(h.Cfg.Access) {
		return ApplyStats{}, &DeniedError{User: caller.User, What: "apply the registry",
			Why: "only root and members of the admin group " + h.Cfg.Access.AdminGroup + " may"}
	}
	var gen uint64
	err := h.withRegistry(ctx, func() error {
		if err := h.removeRegistryTemps(); err != nil {
			return err
		}
		if _, err := h.recoverOps(ctx); err != nil {
			return err
		}
		if full {
			if err := atomicfile.WriteFile(h.paths().fullRequest(), nil, 0o644); err != nil {
				return err
			}
		}
		var err error
		gen, err = h.pendingGen(full)
		return err
	})
	if err != nil {
		return ApplyStats{}, err
	}
	return h.Apply(ctx, gen)
}
