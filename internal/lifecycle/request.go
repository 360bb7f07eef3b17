package lifecycle

import (
	"context"
	"slices"

	"github.com/flyingcircusio/devhost/internal/atomicfile"
)

// Request is a registry change a request (ensure, destroy, keep, cleanup)
// committed and no successful rebuild has applied yet: what a failed
// rebuild covering it undoes. It is written under the registry lock in the
// same section as the change. Changes nobody requested through devhost (an
// admin's hand edit, an import) have no Request, so a failed rebuild never
// deletes or rewrites them: what an admin wrote is the desired state.
type Request struct {
	Op   string `json:"op"`
	Name string `json:"name"`
	// Gen is the wanted generation the change was counted in.
	Gen uint64 `json:"gen"`
	// Prev is the entry's bytes before the first request on Name that is
	// not applied yet (nil: there was no entry).
	Prev *string `json:"prev,omitempty"`
	// Wrote is the entry's bytes the request left (nil: it removed it).
	// A rollback puts Prev back only while the entry still reads Wrote.
	Wrote *string `json:"wrote,omitempty"`
	// System is true when a request changed the container's system
	// (an ensure): a rollback then also restores provision.nix and the
	// profile generation from PrevProvision and PrevBuild.
	System        bool         `json:"system,omitempty"`
	PrevProvision *string      `json:"prev_provision,omitempty"`
	PrevBuild     *BuildRecord `json:"prev_build,omitempty"`
}

// recordRequest records that op committed its change of name at
// generation gen. prev is the entry before the change; in, for an ensure,
// says what its system was before. An earlier request on name that is not
// applied yet keeps its "before": a failure undoes both. Call under the
// registry lock, after the change and its bump.
func (h *Host) recordRequest(op, name string, gen uint64, prev *string, in *Intent) error {
	rq := Request{Op: op, Name: name, Gen: gen, Prev: prev}
	if in != nil {
		rq.System, rq.PrevProvision, rq.PrevBuild = true, in.PrevProvision, in.PrevBuild
	}
	a, err := h.readApplied()
	if err != nil {
		return err
	}
	var old Request
	if ok, err := readJSON(h.paths().request(name), &old); err != nil {
		return err
	} else if ok && old.Gen > a.Gen {
		rq.Prev = old.Prev
		if old.System {
			rq.System, rq.PrevProvision, rq.PrevBuild = true, old.PrevProvision, old.PrevBuild
		}
	}
	cur, err := readOptional(h.Reg.Path(name))
	if err != nil {
		return err
	}
	if cur != nil {
		s := string(cur)
		rq.Wrote = &s
	}
	return writeJSON(h.paths().request(name), rq, 0o600)
}

// entryBytes is the registry file of name as recordRequest's prev (nil:
// none). Call under the registry lock.
func (h *Host) entryBytes(name string) (*string, error) {
	b, err := readOptional(h.Reg.Path(name))
	if err != nil || b == nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

// requests reads the recorded requests with a generation in (from, to].
// Call under the registry lock.
func (h *Host) requests(from, to uint64) (map[string]Request, error) {
	out := map[string]Request{}
	err := h.eachRequest(func(rq Request) error {
		if from < rq.Gen && rq.Gen <= to {
			out[rq.Name] = rq
		}
		return nil
	})
	return out, err
}

// eachRequest calls f for every recorded request.
func (h *Host) eachRequest(f func(Request) error) error {
	names, err := recordNames(h.paths().requestDir())
	if err != nil {
		return err
	}
	for _, name := range names {
		var rq Request
		ok, err := readJSON(h.paths().request(name), &rq)
		if err != nil {
			return err
		}
		if ok {
			if err := f(rq); err != nil {
				return err
			}
		}
	}
	return nil
}

// dropAppliedRequests removes the records of requests a successful rebuild
// applied (generation at most gen). Call under the registry lock.
func (h *Host) dropAppliedRequests(gen uint64) error {
	return h.eachRequest(func(rq Request) error {
		if rq.Gen > gen {
			return nil
		}
		return atomicfile.Remove(h.paths().request(rq.Name))
	})
}

// undoRequest puts back what rq changed, unless the entry changed since
// (a later request, whose record then has a later generation, or a hand
// edit, which is kept). It reports whether it undid anything. Call under
// the registry lock.
func (h *Host) undoRequest(ctx context.Context, rq Request) (bool, error) {
	var cur Request
	if ok, err := readJSON(h.paths().request(rq.Name), &cur); err != nil || !ok || cur.Gen != rq.Gen {
		return false, err // a later request owns it now
	}
	if err := atomicfile.Remove(h.paths().request(rq.Name)); err != nil {
		return false, err
	}
	now, err := h.entryBytes(rq.Name)
	if err != nil {
		return false, err
	}
	if (now == nil) != (rq.Wrote == nil) || now != nil && *now != *rq.Wrote {
		return false, nil // edited by hand since: the admin's change stays
	}
	if rq.Prev == nil {
		// A new container: its profile and leftovers are purged once no
		// host declares it (by its ensure, or else by the sweep).
		return true, atomicfile.Remove(h.Reg.Path(rq.Name))
	}
	if err := h.Reg.WriteEntry(rq.Name, []byte(*rq.Prev)); err != nil {
		return false, err
	}
	if !rq.System {
		return true, nil
	}
	prov := h.provisionPath(rq.Name)
	if rq.PrevProvision == nil {
		err = atomicfile.Remove(prov)
	} else {
		err = writePrivate(prov, []byte(*rq.PrevProvision))
	}
	if err != nil {
		return false, err
	}
	if rq.PrevBuild != nil {
		return true, h.restoreProfile(ctx, rq.Name, *rq.PrevBuild)
	}
	return true, nil
}

// sortedNames returns m's keys in order.
func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
