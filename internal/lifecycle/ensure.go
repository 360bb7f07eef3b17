package lifecycle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/channel"
	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/flyingcircusio/devhost/internal/progress"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/internal/runner"
)

// EnsureRequest is one `devhost ensure` (or `fc-build-dev-container
// ensure`). Validate it with Host.Validate before Ensure.
type EnsureRequest struct {
	Name        string
	Channel     string
	Aliases     []string
	Environment string
	Root        string // deployment root (informational)
	ServiceUser string
	SSHKeys     []string
	// Provision is the deployment's provision.nix; nil means none.
	Provision []byte
	// KeepProvision keeps the container's current provision.nix when
	// Provision is nil (the compatibility CLI never sends one).
	KeepProvision bool
	// Force builds the container's system even when its inputs are
	// unchanged (e.g. a channel URL that moved).
	Force bool
	// SetLimits replaces the container's resource limits with Limits
	// (unset fields: the host's defaults); without it they are kept, as
	// for the compatibility CLI, which never sends any.
	SetLimits bool
	Limits    limits.Limits
	// ExpireAfter, when positive, sets the container to expire that long
	// from now; NeverExpire clears the expiry; neither keeps it.
	ExpireAfter time.Duration
	NeverExpire bool
	Caller      Caller
	// Progress, when set, is told the phases as they happen (nil: silent).
	Progress progress.Reporter
}

// EnsureResult is what an ensure did.
type EnsureResult struct {
	Container *registry.Container
	Created   bool
	// Built is true when the container's system was built (its inputs
	// changed); StorePath is then the new system.
	Built     bool
	StorePath string
	// Profile is the profile's current generation link (system-N-link).
	Profile string
	// Apply says whether this process rebuilt the host.
	Apply ApplyStats
	// Unit is what happened to the container's unit: "started",
	// "switched" (reloaded into its new system), "restarted" (its
	// addresses or limits changed) or "unchanged".
	Unit string
	// HostKey is the container's ed25519 host key (empty until its sshd
	// created one).
	HostKey string
	// Warnings are for the caller to show; they do not fail the ensure:
	// the keys of users the container is shared with that were left out
	// (lines skipped, files refused), a new container under http-01 near
	// Let's Encrypt's weekly limit.
	Warnings []string
}

// entryEdit is what Share changes in an existing entry instead of what an
// EnsureRequest sets: everything else (channel, aliases, provision.nix,
// keys, state, deployment time) stays as it is.
type entryEdit struct {
	what  string // for a refusal: "share", "unshare"
	apply func(c *registry.Container) error
}

// BuildError is a container system that failed to build: the container
// keeps its previous system (a new one is not registered).
type BuildError struct {
	Name string
	Err  error
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("building the system of container %q failed; nothing else was changed: %v", e.Name, e.Err)
}

func (e *BuildError) Unwrap() error { return e.Err }

// ForeignError is a name taken by something devhost did not create (an
// imperative nixos-container, say).
type ForeignError struct {
	Name, Path string
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("container %q exists outside devhost (%s); import it with `devhost import-legacy` or choose another name", e.Name, e.Path)
}

func (h *Host) provisionPath(name string) string { return generator.ProvisionNixPath(h.Cfg, name) }

// Ensure creates or updates a container and returns once it runs its
// system with the host applying its declaration. The keys of the users it
// is shared with are read again (a changed authorized_keys changes its
// system).
func (h *Host) Ensure(ctx context.Context, req EnsureRequest) (*EnsureResult, error) {
	return h.ensure(ctx, req, nil)
}

// ensureRun is one ensure as it moves through its steps: the request, what
// plan decided under the registry lock, and what the later steps add to the
// result.
type ensureRun struct {
	req  EnsureRequest
	edit *entryEdit // nil: an ensure; else an edit of the existing entry
	pr   *progress.Tracker
	res  *EnsureResult

	// Before the registry lock (prepare).
	ch      channel.Resolved // an edit's is resolved by plan
	release string           // the channel's NixOS release, when needed

	// Decided by plan; abort undoes in until commit drops it.
	in        Intent
	c         *registry.Container // the entry commit writes
	needBuild bool
	inputs    string // digest of the build's inputs (buildInputs)
	hasProv   bool

	// Set by commit: the generation to wait for, and whether this change
	// left the container's host side as it was.
	gen           uint64
	hostUnchanged bool
	// unitBefore is the UnitPart of the container's live host file when
	// commit ran ("" when it had none): what its running unit was
	// declared with.
	unitBefore string
}

// ensure is Ensure, or with edit an update of an existing entry by edit
// alone, built and switched the same way. Its steps, in order: recovery
// of a destroy that died before its rebuild (settleDestroyed), prepare,
// plan, build, commit, wait and run; until commit succeeds, a failure is
// undone by abort.
func (h *Host) ensure(ctx context.Context, req EnsureRequest, edit *entryEdit) (*EnsureResult, error) {
	if err := checkName(req.Name); err != nil {
		return nil, err
	}
	if err := req.Caller.CheckMember(h.Cfg.Access, "ensure containers"); err != nil {
		return nil, err
	}
	e := &ensureRun{req: req, edit: edit, pr: progress.Start(req.Progress, req.Name, nil), res: &EnsureResult{}}
	e.pr.Phase(progress.Validated, "")
	op, err := lock(ctx, h.paths().opLock(req.Name))
	if err != nil {
		return nil, err
	}
	defer op.unlock()
	if err := h.settleDestroyed(ctx, req.Name); err != nil {
		return nil, err
	}
	if err := h.prepare(ctx, e); err != nil {
		return nil, err
	}
	for _, step := range []func(context.Context, *ensureRun) error{h.plan, h.buildStep, h.commit} {
		if err := step(ctx, e); err != nil {
			return nil, h.abort(ctx, e.in, err)
		}
	}
	if err := h.wait(ctx, e); err != nil {
		return e.res, err
	}
	return e.res, h.run(ctx, e)
}

// prepare does, before the registry lock, what may take long: it resolves
// the channel and, for a new container (or one recorded before devhost
// kept state versions), evaluates the channel's NixOS release, its
// system.stateVersion (an https channel is downloaded).
func (h *Host) prepare(ctx context.Context, e *ensureRun) error {
	if e.edit != nil {
		return nil // it builds with the entry's channel, checked in plan
	}
	// Validate checked the channel already; this is the value the build
	// uses, checked again so that nothing unchecked reaches nix-build.
	var err error
	if e.ch, err = h.ResolveChannel(e.req.Channel); err != nil {
		return fmt.Errorf("ensure %s: %w", e.req.Name, err)
	}
	if prev, err := h.Reg.Get(e.req.Name); err != nil || prev.StateVersion == "" {
		if e.release, err = h.channelRelease(ctx, e.ch); err != nil {
			return err
		}
	}
	return nil
}

// plan runs under the registry lock: it first recovers what earlier
// crashes left, then authorises the caller against the entry, records the
// intent, reserves the address of a new container and stages the build
// inputs, deciding whether a build is needed.
func (h *Host) plan(ctx context.Context, e *ensureRun) error {
	return h.withRegistry(ctx, func() error {
		if err := h.recoverBefore(ctx, e.req.Name); err != nil {
			return err
		}
		old, err := h.Reg.Get(e.req.Name)
		if err != nil && !errors.Is(err, registry.ErrNotFound) {
			return err
		}
		if err := h.authorize(ctx, e, old); err != nil {
			return err
		}
		if e.in, err = h.newIntent("ensure", e.req.Name, old == nil); err != nil {
			return err
		}
		if err := h.planEntry(ctx, e, old); err != nil {
			return err
		}
		var warnings []string
		e.c.SharedKeys, warnings = h.sharedKeys(e.c.SharedWith)
		e.res.Warnings = append(e.res.Warnings, warnings...)
		if err := writeJSON(h.paths().intent(e.req.Name), e.in, 0o644); err != nil {
			return err
		}
		if old == nil {
			// Reserves the address; snapshots leave it out while the
			// intent says New.
			if err := h.Reg.Put(e.c); err != nil {
				return err
			}
		}
		return h.stage(e)
	})
}

// recoverBefore undoes what crashed operations left (their intents, a
// killed rebuild) before an ensure of name reads its entry. Call under the
// registry lock, holding name's op lock.
func (h *Host) recoverBefore(ctx context.Context, name string) error {
	if _, err := h.recoverOps(ctx); err != nil {
		return err
	}
	return h.recoverOwn(ctx, name)
}

// authorize checks that the caller may change the entry old (or, when nil,
// create it); an edit is applied to a copy of old as e.c, before the
// intent, so that a refused edit leaves no trace.
func (h *Host) authorize(ctx context.Context, e *ensureRun, old *registry.Container) error {
	name, caller := e.req.Name, e.req.Caller
	switch {
	case old != nil:
		what := "change"
		if e.edit != nil {
			what = e.edit.what
		}
		if err := caller.CheckOwner(h.Cfg.Access, what, name, old.Owner); err != nil {
			return err
		}
		if e.edit == nil {
			return nil
		}
		cp := *old
		cp.SharedWith = slices.Clone(old.SharedWith)
		e.c = &cp
		return e.edit.apply(e.c)
	case e.edit != nil:
		return &NotFoundError{Name: name}
	}
	if err := h.clearLeftovers(ctx, name); err != nil {
		return err
	}
	if err := h.checkNotForeign(name); err != nil {
		return err
	}
	if err := h.checkQuota(caller); err != nil {
		return err
	}
	if owner := h.reservedBy(name); owner != "" {
		return caller.CheckOwner(h.Cfg.Access, "use the reserved name", name, owner)
	}
	return nil
}

// planEntry sets e.c to the entry commit writes: a new one with a freshly
// allocated address, a copy of old with the request's fields, or (an edit)
// the edited copy authorize made, with the entry's channel resolved.
func (h *Host) planEntry(ctx context.Context, e *ensureRun, old *registry.Container) error {
	now := h.now()
	if old == nil {
		e.res.Created = true
		c, err := h.newEntry(e.req, now)
		if err != nil {
			return err
		}
		e.c = c
	} else if e.edit == nil {
		cp := *old
		e.c = &cp
		if err := h.giveAddress6(e.c, old); err != nil {
			return err
		}
	}
	if e.edit != nil {
		// An edit keeps the entry's channel and state version (an entry
		// without one gets it from the next ensure).
		var err error
		if e.ch, err = h.ResolveChannel(e.c.Channel); err != nil {
			return fmt.Errorf("%s %s: %w", e.edit.what, e.req.Name, err)
		}
		return nil
	}
	if e.c.StateVersion == "" {
		// Kept across channel changes; set once.
		if e.release == "" { // the entry changed since it was read
			var err error
			if e.release, err = h.channelRelease(ctx, e.ch); err != nil {
				return err
			}
		}
		e.c.StateVersion = e.release
	}
	setRequested(e.c, e.req, now)
	return nil
}

// newEntry is the entry of a new container, with its address allocated
// (the one place an ensure allocates one). Call under the registry lock.
func (h *Host) newEntry(req EnsureRequest, now time.Time) (*registry.Container, error) {
	addr, addr6, err := h.Reg.AllocateBoth(h.Cfg.Addresses, req.Name)
	if err != nil {
		return nil, err
	}
	return &registry.Container{Name: req.Name, Owner: req.Caller.User, Address: addr, Address6: addr6, Created: now, State: registry.Running}, nil
}

// giveAddress6 gives c, an entry registered before the host had
// network6, its IPv6 address, and reserves it at once (the entry as it
// was, old, plus the address) like a new one's.
func (h *Host) giveAddress6(c, old *registry.Container) error {
	if c.Address6.IsValid() || !h.Cfg.Addresses.HasIPv6() {
		return nil
	}
	var err error
	if c.Address6, err = h.Reg.Allocate6(h.Cfg.Addresses, c.Name); err != nil {
		return err
	}
	reserved := *old
	reserved.Address6 = c.Address6
	return h.Reg.Put(&reserved)
}

// setRequested sets the fields of c that an ensure request sets.
func setRequested(c *registry.Container, req EnsureRequest, now time.Time) {
	c.Channel = req.Channel
	c.Aliases = slices.Clone(req.Aliases)
	c.Environment = req.Environment
	c.Root = req.Root
	c.ServiceUser = req.ServiceUser
	c.SSHKeys = slices.Clone(req.SSHKeys)
	c.State = registry.Running
	if req.SetLimits {
		c.Limits = req.Limits
	}
	switch {
	case req.NeverExpire:
		c.ExpiresAt = time.Time{}
	case req.ExpireAfter > 0:
		c.ExpiresAt = now.Add(req.ExpireAfter).UTC().Truncate(time.Second)
	}
}

// stage writes the container's provision.nix and its configuration.nix
// (rendered from e.c) to its build directory and decides whether its
// system must be built: when forced, when its inputs changed since the
// last build, or when its profile is not that build's. Call under the
// registry lock.
func (h *Host) stage(e *ensureRun) error {
	name := e.req.Name
	prov := e.req.Provision
	if prov == nil && e.req.KeepProvision && e.in.PrevProvision != nil {
		prov = []byte(*e.in.PrevProvision)
	}
	if prov != nil {
		e.hasProv = true
		if err := writePrivate(h.provisionPath(name), prov); err != nil {
			return err
		}
	} else if err := atomicfile.Remove(h.provisionPath(name)); err != nil {
		return err
	}
	r, err := h.Render.Render([]*registry.Container{e.c})
	if err != nil {
		return err
	}
	conf := r.configuration(name)
	if err := writePrivate(h.buildConfigPath(name), conf); err != nil {
		return err
	}
	// The resolved location: a file:// channel whose profile moved to a
	// new store path is a new input.
	e.inputs = buildInputs(e.ch.Location(), conf, prov)
	prev := e.in.PrevBuild
	e.needBuild = e.req.Force || prev == nil || prev.Inputs != e.inputs || prev.Profile == "" || h.profileTarget(name) != prev.Profile
	return nil
}

// buildStep builds the container's system, without any lock, when plan
// found it needed.
func (h *Host) buildStep(ctx context.Context, e *ensureRun) error {
	if !e.needBuild {
		return nil
	}
	e.pr.Phase(progress.Building, "")
	out, err := h.build(ctx, e.req.Name, e.ch, e.hasProv, e.pr.LogWriter(progress.Building))
	if err != nil {
		return &BuildError{Name: e.req.Name, Err: err}
	}
	e.res.Built, e.res.StorePath = true, out
	e.pr.Phase(progress.Built, out)
	return nil
}

// commit runs under the registry lock: it installs the built system as the
// profile, writes the entry, drops the intent (from here on the change
// stands) and counts the change.
func (h *Host) commit(ctx context.Context, e *ensureRun) error {
	err := h.withRegistry(ctx, func() error {
		name := e.req.Name
		if e.needBuild {
			if err := h.installProfile(ctx, e); err != nil {
				return err
			}
		}
		if e.edit == nil {
			e.c.Deployed = h.now()
		}
		e.c.LastError = ""
		e.unitBefore = h.liveUnitPart(name)
		if err := h.Reg.Put(e.c); err != nil {
			return err
		}
		if err := atomicfile.Remove(h.paths().intent(name)); err != nil {
			return err
		}
		_ = os.RemoveAll(h.paths().buildDir(name))
		if e.res.Created {
			// The registry entry replaces `devhost reserve`'s reservation.
			if err := atomicfile.Remove(h.reservationPath(name)); err != nil {
				return err
			}
		}
		return h.countChange(e)
	})
	if err != nil {
		return err
	}
	e.res.Profile = h.profileTarget(e.req.Name)
	e.res.Container = e.c
	return nil
}

// installProfile makes the built system the container's profile and
// records what it was built from. Call under the registry lock.
func (h *Host) installProfile(ctx context.Context, e *ensureRun) error {
	name := e.req.Name
	argv := append(append([]string(nil), h.Cfg.Commands.NixEnv...), "-p", h.ProfilePath(name), "--set", e.res.StorePath)
	if _, err := h.Run.Run(ctx, runner.Cmd{Argv: argv}); err != nil {
		return fmt.Errorf("install the system of %q as its profile: %w", name, err)
	}
	rec := BuildRecord{Inputs: e.inputs, StorePath: e.res.StorePath, Profile: h.profileTarget(name), Time: h.now()}
	return writeJSON(h.paths().buildRecord(name), rec, 0o644)
}

// countChange sets e.gen, the generation whose rebuild applies the change:
// a new one, with the change's request record, or, when the host side of
// an existing container is unchanged, the wanted one (every other change
// bumped it itself, so the whole set, which grows with the registry, need
// not be rendered). Call under the registry lock.
func (h *Host) countChange(e *ensureRun) error {
	if e.res.Created || e.in.PrevEntry == nil || !h.sameHostPart(*e.in.PrevEntry, e.c) {
		var err error
		if e.gen, err = h.bump(); err != nil {
			return err
		}
		return h.recordRequest("ensure", e.req.Name, e.gen, e.in.PrevEntry, &e.in)
	}
	e.hostUnchanged = true
	w, err := h.readWanted()
	if err != nil {
		return err
	}
	e.gen = w.Gen
	// Unless that generation failed and the registry still holds this
	// container's failed change (its rebuilder died before rolling back):
	// then a retry would only ever get the old failure. Count it anew, as
	// bumpFresh does.
	f, err := h.failureCovering(e.gen)
	if err != nil || f == nil || h.appliedAsIs(e.c) {
		return err
	}
	w.Gen++
	e.gen = w.Gen
	return writeJSON(h.paths().wanted(), w, 0o644)
}

// wait waits for (or runs) the host rebuild that applies generation e.gen.
// A rebuild failure that rolled back a new container purges its remains.
func (h *Host) wait(ctx context.Context, e *ensureRun) error {
	stopWaiting := h.reportWaiting(ctx, e.pr, e.gen)
	var err error
	e.res.Apply, err = h.Apply(ctx, e.gen)
	stopWaiting()
	var re *RebuildError
	if errors.As(err, &re) && e.hostUnchanged && h.appliedAsIs(e.c) {
		// Someone else's change failed; this container's declaration was
		// not part of it and the host runs it as it is.
		err = nil
	}
	if err != nil {
		if errors.As(err, &re) && e.res.Created {
			// The rollback unregistered it: remove its profile now.
			h.purgeIfGone(ctx, e.req.Name)
		}
		// An existing container's entry is back as it was before this
		// request, byte for byte: the error goes to the caller (and is in
		// the failure record), not into the entry.
		return err
	}
	if e.res.Apply.RestartErr != "" {
		// Other containers' (this one's own restart comes in run).
		e.res.Warnings = append(e.res.Warnings, e.res.Apply.RestartErr)
	}
	if e.res.Apply.Rebuilt {
		e.pr.Phase(progress.Applied, "this request ran the host rebuild")
	} else {
		e.pr.Phase(progress.Applied, "")
	}
	return nil
}

// run makes the container run its current system (startOrSwitch). An edit
// leaves a stopped container stopped; it runs the new system when started.
func (h *Host) run(ctx context.Context, e *ensureRun) error {
	res := e.res
	if e.edit != nil && e.c.State == registry.Stopped {
		res.Unit = "unchanged"
		e.pr.Phase(progress.Done, "unit "+res.Unit)
		return nil
	}
	e.pr.Phase(progress.Starting, "")
	var err error
	// Restarted when what its unit runs with (addresses, limits) changed
	// from the declaration it ran with to the one applied now, whether
	// by this request or by the host's configuration: the host's switch
	// leaves a running instance of NixOS' container@ template as it is.
	// Without a request of its own (hostUnchanged) the rebuild's leader
	// restarts it when the host's configuration changed it.
	restart := !res.Created && !e.hostUnchanged && e.unitBefore != "" && h.liveUnitPart(e.req.Name) != e.unitBefore
	if res.Unit, err = h.startOrSwitch(ctx, e.req.Name, res.Built && !res.Created, restart); err != nil {
		h.noteError(ctx, e.req.Name, err)
		return err
	}
	res.HostKey = h.hostKey(e.req.Name)
	if res.Created {
		if w := h.issuanceWarning(); w != "" {
			res.Warnings = append(res.Warnings, w)
		}
	}
	e.pr.Phase(progress.Done, "unit "+res.Unit)
	return nil
}

func (h *Host) buildConfigPath(name string) string {
	return filepath.Join(h.paths().buildDir(name), "configuration.nix")
}

// leftovers reports whether name has devhost's remains (a build record)
// without a registry entry, and whether the applied host state still
// declares it. Call under the registry lock.
func (h *Host) leftovers(name string) (remains, declared bool, err error) {
	if _, err := os.Stat(h.paths().buildRecord(name)); err != nil {
		return false, false, nil
	}
	if _, err := os.Stat(h.Reg.Path(name)); err == nil {
		return false, false, nil
	}
	declared, err = h.declared(name)
	return true, declared, err
}

// settleDestroyed applies the removal of a destroyed container whose
// destroy (or cleanup) died before its rebuild, so that an ensure of the
// same name starts afresh instead of on the old container, which the host
// still runs. It runs before plan, holding only the op lock (the
// rebuild lock comes after it).
func (h *Host) settleDestroyed(ctx context.Context, name string) error {
	var (
		declared bool
		gen      uint64
	)
	err := h.withRegistry(ctx, func() error {
		var err error
		if _, declared, err = h.leftovers(name); err != nil || !declared {
			return err
		}
		gen, err = h.bump()
		return err
	})
	if err != nil || !declared {
		return err
	}
	_, err = h.Apply(ctx, gen)
	return err
}

// clearLeftovers removes what a destroyed container left (its process died
// after the rebuild; recoverOps could not purge it because this ensure holds
// its op lock): the new container must never start on the old one's root
// directory and profile, which may be another user's. While the host still
// declares the old container nothing can be removed safely, and the ensure
// is refused. Call under the registry lock, holding name's op lock.
func (h *Host) clearLeftovers(ctx context.Context, name string) error {
	remains, declared, err := h.leftovers(name)
	if err != nil || !remains {
		return err
	}
	if declared {
		return fmt.Errorf("container %q was destroyed, but the host still runs it (its removal is not applied yet); try again after the next host rebuild (`devhost apply`)", name)
	}
	return h.purge(ctx, name)
}

// checkNotForeign refuses a new name whose profile or root directory
// exists without devhost having built it.
func (h *Host) checkNotForeign(name string) error {
	if _, err := os.Stat(h.paths().buildRecord(name)); err == nil {
		return nil // devhost's own leftovers: they are reused
	}
	for _, p := range []string{filepath.Dir(h.ProfilePath(name)), filepath.Join(h.containersDir(), name)} {
		if _, err := os.Lstat(p); err == nil {
			return &ForeignError{Name: name, Path: p}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("container %q: %w", name, err)
		}
	}
	return nil
}

// newIntent records what an operation on name may change.
func (h *Host) newIntent(op, name string, isNew bool) (Intent, error) {
	in := Intent{Op: op, Name: name, PID: os.Getpid(), New: isNew, Start: h.now(), PrevProfile: h.profileTarget(name)}
	if b, err := readOptional(h.Reg.Path(name)); err != nil {
		return in, err
	} else if b != nil {
		s := string(b)
		in.PrevEntry = &s
	}
	if b, err := readOptional(h.provisionPath(name)); err != nil {
		return in, err
	} else if b != nil {
		s := string(b)
		in.PrevProvision = &s
	}
	var rec BuildRecord
	if ok, err := readJSON(h.paths().buildRecord(name), &rec); err != nil {
		return in, err
	} else if ok {
		in.PrevBuild = &rec
	}
	return in, nil
}

// abort undoes an ensure that failed before its change was committed. An
// existing container records the error.
func (h *Host) abort(ctx context.Context, in Intent, cause error) error {
	if in.Name == "" {
		return cause
	}
	err := h.withRegistry(context.WithoutCancel(ctx), func() error {
		if ok, err := readJSON(h.paths().intent(in.Name), &Intent{}); err != nil || !ok {
			return err // nothing was recorded, nothing to undo
		}
		if err := h.undo(context.WithoutCancel(ctx), in); err != nil {
			return err
		}
		if err := atomicfile.Remove(h.paths().intent(in.Name)); err != nil {
			return err
		}
		if in.New {
			return nil
		}
		return h.setLastError(in.Name, cause)
	})
	if err != nil {
		return fmt.Errorf("%w (and undoing it failed: %w)", cause, err)
	}
	return cause
}

// noteError records err as the container's last error (best effort: the
// error itself is what the caller reports).
func (h *Host) noteError(ctx context.Context, name string, cause error) {
	_ = h.withRegistry(context.WithoutCancel(ctx), func() error { return h.setLastError(name, cause) })
}

func (h *Host) setLastError(name string, cause error) error {
	c, err := h.Reg.Get(name)
	if err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			return nil
		}
		return err
	}
	// Keep the start too: it names what failed and where (Nix's
	// "at /…/provision.nix:12:3").
	msg := runner.Shorten(cause.Error(), 4000)
	c.LastError = strings.ToValidUTF8(strings.ReplaceAll(msg, "\x00", ""), "?")
	return h.Reg.Put(c)
}

// buildInputs is the digest of everything a container's system is built
// from.
func buildInputs(channel string, conf, prov []byte) string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(channel), conf, prov} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// build builds the container's system from its own channel with
// restricted evaluation: Nix may read only the channel, the generated
// configuration and the deployment's provision.nix. It returns the store
// path; the result link under the build directory keeps it alive until
// the profile references it.
func (h *Host) build(ctx context.Context, name string, ch channel.Resolved, hasProv bool, log *progress.LineWriter) (string, error) {
	out := filepath.Join(h.paths().buildDir(name), "result")
	prov := ""
	if hasProv {
		prov = h.provisionPath(name)
	}
	argv := append(append([]string(nil), h.Cfg.Commands.NixBuild...), "<nixpkgs/nixos>", "-A", "system")
	argv = append(argv, evalArgs(ch, h.buildConfigPath(name), prov)...)
	argv = append(argv, "-o", out)
	cmd := runner.Cmd{Argv: argv, Env: []string{"NIX_PATH="}}
	if log != nil {
		// Nix's log, line by line, as progress; the runner still keeps
		// its bounded digest for the error.
		cmd.Log = log
		defer log.Flush()
	}
	res, err := h.Run.Run(ctx, cmd)
	if err != nil {
		return "", err
	}
	lines := strings.Fields(strings.TrimSpace(string(res.Stdout)))
	if len(lines) == 0 {
		return "", fmt.Errorf("%s printed no store path", argv[0])
	}
	path := lines[len(lines)-1]
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("%s printed %q, not a store path", argv[0], path)
	}
	return path, nil
}

// releaseExpr is the NixOS release of the nixpkgs on the search path,
// what NixOS' system.stateVersion defaults to.
const releaseExpr = "(import <nixpkgs/lib>).trivial.release"

// channelRelease evaluates the NixOS release of the channel ("24.11") with
// the same search path and restrictions as the container's build.
func (h *Host) channelRelease(ctx context.Context, ch channel.Resolved) (string, error) {
	argv := append(append([]string(nil), h.Cfg.Commands.NixInstantiate...), "--eval", "--json", "--expr", releaseExpr)
	argv = append(argv, evalArgs(ch, "", "")...)
	res, err := h.Run.Run(ctx, runner.Cmd{Argv: argv, Env: []string{"NIX_PATH="}})
	if err != nil {
		return "", fmt.Errorf("determine the NixOS release of channel %s (the new container's system.stateVersion): %w", ch.Channel(), err)
	}
	var rel string
	if err := json.Unmarshal(bytes.TrimSpace(res.Stdout), &rel); err != nil || !registry.ValidStateVersion(rel) {
		return "", fmt.Errorf("channel %s: %s printed %q as its NixOS release, not a release like \"24.11\"", ch.Channel(), argv[0], truncate(res.Stdout, 80))
	}
	return rel, nil
}

// truncate is b, cut to at most n bytes.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// ResolveChannel parses s and checks it by the host's channel policy.
func (h *Host) ResolveChannel(s string) (channel.Resolved, error) {
	c, err := channel.Parse(s)
	if err != nil {
		return channel.Resolved{}, err
	}
	return h.Cfg.Channels.Policy().Check(c)
}

// evalArgs are the search path and restrictions of a container's build
// (its command runs with NIX_PATH emptied): the channel as <nixpkgs>, the
// generated configuration as <nixos-config> and, when prov is not "",
// provision.nix as <devhost-provision>; conf "" leaves out the
// configuration (an evaluation of the channel alone). Restricted evaluation allows
// every path on the search path, and Nix adds NIX_PATH (inherited from
// whoever ran devhost) and nix.conf's nix-path to the -I entries: the
// host's nixos-config, say, which a provision.nix could then read. Both
// are emptied, so only these entries are searched and readable. The
// channel's entries come from the checked channel, never from a raw URL.
func evalArgs(ch channel.Resolved, conf, prov string) []string {
	args := ch.NixArgs()
	if conf != "" {
		args = append(args, "-I", "nixos-config="+conf)
	}
	if prov != "" {
		args = append(args, "-I", "devhost-provision="+prov)
	}
	return append(args, "--option", "restrict-eval", "true", "--option", "nix-path", "")
}

// startOrSwitch makes the container's unit run its current system and
// declaration: start it when it is not running; restart a running one when
// restart (its declaration changed: the host's switch leaves instances of
// NixOS' container@ template running as they are, so the new addresses
// and limits take effect only when devhost restarts it; the restart also
// runs its current system); or reload it (NixOS' container@ reload
// switches the running container to its profile) when its system changed.
func (h *Host) startOrSwitch(ctx context.Context, name string, switched, restart bool) (string, error) {
	sc := h.Cfg.Commands.Systemctl
	_, err := h.Run.Run(ctx, runner.Cmd{Argv: append(append([]string(nil), sc...), "is-active", "--quiet", unit(name))})
	var re *runner.Error
	switch {
	case err == nil && restart:
		_, err = h.Run.Run(ctx, runner.Cmd{Argv: append(append([]string(nil), sc...), "restart", unit(name))})
		return "restarted", err
	case err == nil && switched:
		_, err = h.Run.Run(ctx, runner.Cmd{Argv: append(append([]string(nil), sc...), "reload", unit(name))})
		return "switched", err
	case err == nil:
		return "unchanged", nil
	case errors.As(err, &re) && re.ExitCode > 0:
		_, err = h.Run.Run(ctx, runner.Cmd{Argv: append(append([]string(nil), sc...), "start", unit(name))})
		return "started", err
	default:
		return "", err
	}
}

// hostKey reads the container's public host key ("" when absent or not
// one). The file lies in the container's root directory, which the
// container's root (the developer, with sudo inside) controls, while
// devhost reads it as the host's root and prints it to a sudo user: so
// symbolic links are resolved inside the container's root and never out
// of it (a link to the host's /etc/shadow must not be followed), only a
// regular file is read (O_NONBLOCK: a FIFO must not hang the command),
// at most a few KiB of it, and only an ed25519 public key line is
// returned.
func (h *Host) hostKey(name string) string {
	root, err := os.OpenRoot(filepath.Join(h.containersDir(), name))
	if err != nil {
		return ""
	}
	defer func() { _ = root.Close() }()
	rel, err := filepath.Rel(filepath.Join(h.containersDir(), name), h.HostKeyPath(name))
	if err != nil {
		return ""
	}
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(f, maxHostKey+1))
	if err != nil || len(b) > maxHostKey {
		return ""
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "ssh-ed25519 ") || !utf8.ValidString(line) || strings.ContainsFunc(line, unicode.IsControl) {
		return ""
	}
	return line
}

// maxHostKey bounds a public key file (an ed25519 key line is ~100 bytes).
const maxHostKey = 4096

// purgeIfGone purges a container whose entry is gone (best effort: the
// next sweep catches what this misses). The caller holds its op lock.
func (h *Host) purgeIfGone(ctx context.Context, name string) {
	_ = h.withRegistry(context.WithoutCancel(ctx), func() error {
		if _, err := os.Stat(h.Reg.Path(name)); err == nil {
			return nil
		}
		return h.purge(context.WithoutCancel(ctx), name)
	})
}

// reservationPath is where `devhost reserve` records a reserved name.
func (h *Host) reservationPath(name string) string {
	return filepath.Join(h.Cfg.StateDir, "reservations", name+".json")
}

// reservedBy is the owner of a reservation of name ("" when none).
func (h *Host) reservedBy(name string) string {
	var r struct {
		Owner string `json:"owner"`
	}
	if ok, err := readJSON(h.reservationPath(name), &r); err != nil || !ok {
		return ""
	}
	return r.Owner
}

// sameHostPart reports whether a container's host-side declaration (its
// file in containers/; default.nix only lists names) is the same for the
// entry prev (registry file bytes) and c.
func (h *Host) sameHostPart(prev string, c *registry.Container) bool {
	old, diags := registry.Decode(h.Reg.Path(c.Name), []byte(prev))
	if diags.HasErrors() {
		return false
	}
	ro, err := h.Render.Render([]*registry.Container{old})
	if err != nil {
		return false
	}
	rn, err := h.Render.Render([]*registry.Container{c})
	if err != nil {
		return false
	}
	return ro.hostPart(c.Name) == rn.hostPart(c.Name)
}

// liveUnitPart is the UnitPart of container name's host file in the live
// set ("" when it has none).
func (h *Host) liveUnitPart(name string) string {
	b, err := readOptional(h.livePath(generator.HostFile(name)))
	if err != nil || b == nil {
		return ""
	}
	return generator.UnitPart(b)
}

// appliedAsIs reports whether the last applied state declares c exactly as
// it is now.
func (h *Host) appliedAsIs(c *registry.Container) bool {
	applied, err := h.appliedFile(generator.HostFile(c.Name))
	if err != nil || applied == nil {
		return false
	}
	r, err := h.Render.Render([]*registry.Container{c})
	return err == nil && r.hostPart(c.Name) == string(applied)
}
