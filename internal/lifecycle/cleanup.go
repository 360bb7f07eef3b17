package lifecycle

import (
	"context"
	"errors"
	"time"

	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/registry"
)

// Cleanup actions.
const (
	ActionStop    = "stop"
	ActionDestroy = "destroy"
	ActionKeep    = "keep" // would be due, but the keep flag exempts it
)

// Cleanup reasons.
const (
	ReasonIdle    = "idle"
	ReasonExpired = "expired"
)

// CleanupItem is one container the cleanup acts on (or skips).
type CleanupItem struct {
	Name     string        `json:"name"`
	Owner    string        `json:"owner"`
	Action   string        `json:"action"`
	Deployed time.Time     `json:"deployed"` // last deployment (creation when never deployed)
	Idle     time.Duration `json:"idle_ns"`
	// Reason is why: ReasonIdle (not deployed for a while) or
	// ReasonExpired (its expires_at passed).
	Reason string `json:"reason"`
	// ExpiresAt is the container's expiry, when it has one.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Skipped says why a planned action was not carried out.
	Skipped string `json:"skipped,omitempty"`
}

// CleanupPlan is what a cleanup at Now does.
type CleanupPlan struct {
	Now   time.Time     `json:"now"`
	Items []CleanupItem `json:"items"`
	// Warnings are registry entries that could not be read (left alone).
	Warnings []string `json:"warnings,omitempty"`
}

// PlanCleanup decides, for every container, whether the policy stops it
// (running, idle for StopAfter), destroys it (idle for DestroyAfter, or
// its expires_at passed) or would act on it but for its keep flag. The keep
// flag exempts from idle cleanup only: an expiry is an explicit request
// for the container's end, so an expired container is destroyed even when
// kept. It is pure: same input, same plan, in name order (cs is expected
// sorted, as the registry returns it).
func PlanCleanup(cs []*registry.Container, policy hostconfig.Cleanup, now time.Time) CleanupPlan {
	p := CleanupPlan{Now: now}
	for _, c := range cs {
		last := c.Deployed
		if last.IsZero() {
			last = c.Created
		}
		idle := now.Sub(last)
		var expires *time.Time
		if !c.ExpiresAt.IsZero() {
			e := c.ExpiresAt
			expires = &e
			if !now.Before(e) {
				p.Items = append(p.Items, CleanupItem{Name: c.Name, Owner: c.Owner, Action: ActionDestroy,
					Deployed: last, Idle: idle, Reason: ReasonExpired, ExpiresAt: expires})
				continue
			}
		}
		action := ""
		switch {
		case policy.DestroyAfter > 0 && idle >= policy.DestroyAfter:
			action = ActionDestroy
		case policy.StopAfter > 0 && idle >= policy.StopAfter && c.State != registry.Stopped:
			action = ActionStop
		default:
			continue
		}
		if c.Keep {
			action = ActionKeep
		}
		p.Items = append(p.Items, CleanupItem{Name: c.Name, Owner: c.Owner, Action: action, Deployed: last, Idle: idle,
			Reason: ReasonIdle, ExpiresAt: expires})
	}
	return p
}

// Plan reads the registry and plans a cleanup at now.
func (h *Host) Plan(now time.Time) (CleanupPlan, error) {
	cs, err := h.Reg.LoadAll()
	if err != nil && cs == nil {
		return CleanupPlan{}, err
	}
	// Broken entries are left out of the plan (never destroyed by
	// accident); the error reports them.
	return PlanCleanup(cs, h.Cfg.Cleanup, now), err
}

// Cleanup carries out the plan at now with one host rebuild: stopped
// containers are disabled (autoStart off) and their units stopped,
// destroyed ones removed like Destroy does. Containers another command is
// working on are skipped and reported. Only administrators (and root, as
// the cleanup timer runs) may clean up.
func (h *Host) Cleanup(ctx context.Context, now time.Time, caller Caller) (CleanupPlan, ApplyStats, error) {
	var st ApplyStats
	if !caller.Admin(h.Cfg.Access) {
		return CleanupPlan{}, st, &DeniedError{User: caller.User, What: "clean up",
			Why: "only root and members of the admin group " + h.Cfg.Access.AdminGroup + " may; `devhost cleanup --dry-run` shows the plan"}
	}
	var locks []*fileLock
	defer func() {
		for _, l := range locks {
			l.unlock()
		}
	}()
	var (
		plan CleanupPlan
		gen  uint64
		prev = map[string]*string{} // entries before the cleanup changed them
	)
	err := h.withRegistry(ctx, func() error {
		if err := h.removeRegistryTemps(); err != nil {
			return err
		}
		if _, err := h.recoverOps(ctx); err != nil {
			return err
		}
		var err error
		if plan, err = h.Plan(now); err != nil {
			var de *diag.Error
			if !errors.As(err, &de) {
				return err
			}
			// Broken entries stay untouched; say so.
			plan.Warnings = append(plan.Warnings, err.Error())
		}
		for i := range plan.Items {
			it := &plan.Items[i]
			if it.Action == ActionKeep {
				continue
			}
			l, ok, err := tryLock(h.paths().opLock(it.Name))
			if err != nil {
				return err
			}
			if !ok {
				it.Skipped = errBusy.Error()
				continue
			}
			locks = append(locks, l)
			c, err := h.Reg.Get(it.Name)
			if err != nil {
				it.Skipped = err.Error()
				continue
			}
			if prev[it.Name], err = h.entryBytes(it.Name); err != nil {
				return err
			}
			if it.Action == ActionDestroy {
				if err := atomicfile.WriteFile(h.paths().purgeMarker(it.Name), nil, 0o644); err != nil {
					return err
				}
				err = h.Reg.Delete(it.Name)
			} else {
				c.State = registry.Stopped
				err = h.Reg.Put(c)
			}
			if err != nil {
				return err
			}
		}
		if gen, err = h.bumpFresh(); err != nil {
			return err
		}
		for _, n := range sortedNames(prev) {
			if err := h.recordRequest("cleanup", n, gen, prev[n], nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return plan, st, err
	}
	// One rebuild for every change (a no-op when nothing is pending).
	if st, err = h.Apply(ctx, gen); err != nil {
		return plan, st, err
	}
	for i := range plan.Items {
		it := &plan.Items[i]
		if it.Skipped != "" || it.Action == ActionKeep {
			continue
		}
		if err := h.stopUnit(ctx, it.Name); err != nil {
			return plan, st, err
		}
		if it.Action == ActionDestroy {
			err := h.withRegistry(ctx, func() error {
				if _, err := h.Reg.Get(it.Name); err == nil {
					return nil
				}
				return h.purge(ctx, it.Name)
			})
			if err != nil {
				return plan, st, err
			}
		}
	}
	return plan, st, nil
}
