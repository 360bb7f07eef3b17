package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/internal/runner"
)

// Status is what `devhost status NAME` reports about one container.
type Status struct {
	Name        string    `json:"name"`
	Owner       string    `json:"owner"`
	Environment string    `json:"environment,omitempty"`
	Channel     string    `json:"channel"`
	State       string    `json:"state"`  // registry: running or stopped
	Active      string    `json:"active"` // the unit: active, inactive, or unknown
	Address     string    `json:"address"`
	HostAddress string    `json:"host_address"`
	Aliases     []string  `json:"aliases"`
	URLs        []string  `json:"urls"`
	Profile     string    `json:"profile"`            // profile path
	Generation  int       `json:"profile_generation"` // 0: no profile
	System      string    `json:"system,omitempty"`   // store path of the current generation
	Created     time.Time `json:"created"`
	Deployed    time.Time `json:"deployed"`
	Keep        bool      `json:"keep"`
	// SharedWith are the users who may log in as developer too.
	SharedWith []string `json:"shared_with"`
	LastError  string   `json:"last_error,omitempty"`
	// Pending is true while a change of the registry awaits a host rebuild.
	Pending bool `json:"pending"`
	// Interrupted names an operation whose process died; the next
	// ensure, destroy, keep or cleanup undoes it.
	Interrupted string `json:"interrupted,omitempty"`
	HostKey     string `json:"host_key,omitempty"`
	// Address6 and HostAddress6 are the IPv6 pair; empty without IPv6.
	Address6     string `json:"address6,omitempty"`
	HostAddress6 string `json:"host_address6,omitempty"`
	// Cert is the state of the certificate serving the container's names
	// (nil without ACME).
	Cert *CertState `json:"certificate,omitempty"`
	// Limits are the effective resource limits: the container's own,
	// else the host's defaults ("" and 0: not set).
	Limits limits.Limits `json:"limits"`
	// ExpiresAt is when cleanup destroys the container (nil: never).
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// ProtectUser is the HTTP basic auth user of its vhosts ("": public).
	ProtectUser string `json:"protect_user,omitempty"`
	Protected   bool   `json:"protected"`
}

// Status reports on one container. It changes nothing.
func (h *Host) Status(ctx context.Context, name string) (*Status, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	c, err := h.entry(name)
	if err != nil {
		return nil, err
	}
	s := &Status{
		Name: c.Name, Owner: c.Owner, Environment: c.Environment, Channel: c.Channel,
		State: string(c.State), Address: c.Address.String(), HostAddress: h.Cfg.Addresses.HostAddress.String(),
		Aliases: c.Aliases, URLs: h.URLs(c), Profile: h.ProfilePath(name),
		Created: c.Created, Deployed: c.Deployed, Keep: c.Keep, LastError: c.LastError,
		HostKey: h.hostKey(name), Active: "unknown", SharedWith: slices.Clone(c.SharedWith),
		Limits: c.Limits.Or(h.Cfg.Limits), ProtectUser: c.ProtectUser, Protected: c.ProtectUser != "",
	}
	if s.SharedWith == nil {
		s.SharedWith = []string{}
	}
	if !c.ExpiresAt.IsZero() {
		e := c.ExpiresAt.UTC()
		s.ExpiresAt = &e
	}
	if c.Address6.IsValid() {
		s.Address6, s.HostAddress6 = c.Address6.String(), h.Cfg.Addresses.HostAddress6.String()
	}
	if s.Aliases == nil {
		s.Aliases = []string{}
	}
	if t := h.profileTarget(name); t != "" {
		s.Generation = ProfileGeneration(t)
		if sys, err := filepath.EvalSymlinks(h.ProfilePath(name)); err == nil {
			s.System = sys
		}
	}
	w, err := h.readWanted()
	if err != nil {
		return nil, err
	}
	a, err := h.readApplied()
	if err != nil {
		return nil, err
	}
	s.Pending = w.Gen > a.Gen
	if in, dead := h.interrupted(name); dead {
		s.Interrupted = in.Op
	}
	if h.Cfg.ACME.Enable {
		cs := h.CertState(ctx, h.certName(c))
		s.Cert = &cs
	}
	argv := append(append([]string(nil), h.Cfg.Commands.Systemctl...), "is-active", unit(name))
	res, err := h.Run.Run(ctx, runner.Cmd{Argv: argv})
	var re *runner.Error
	if err == nil || errors.As(err, &re) && re.ExitCode > 0 {
		if st := strings.TrimSpace(string(res.Stdout)); st != "" {
			s.Active = st
		}
	}
	return s, nil
}

// URLs are the container's public addresses.
func (h *Host) URLs(c *registry.Container) []string {
	out := []string{"https://" + c.Name + "." + h.Cfg.PublicAddress + "/"}
	if h.Cfg.AliasProxy {
		for _, a := range c.Aliases {
			out = append(out, "https://"+generator.AliasFQDN(h.Cfg, a, c.Name)+"/")
		}
	}
	return out
}

// interrupted reports an intent whose process died.
func (h *Host) interrupted(name string) (Intent, bool) {
	var in Intent
	ok, err := readJSON(h.paths().intent(name), &in)
	if err != nil || !ok {
		return in, false
	}
	l, free, err := tryLock(h.paths().opLock(name))
	if err != nil || !free {
		return in, false
	}
	l.unlock()
	return in, true
}

// HostStatus is what `devhost status` reports about the devhost.
type HostStatus struct {
	Containers int `json:"containers"`
	// WantedGen and AppliedGen are the lifecycle's generations: equal when
	// every registry change reached the host.
	WantedGen  uint64    `json:"wanted_generation"`
	AppliedGen uint64    `json:"applied_generation"`
	AppliedAt  time.Time `json:"applied_at"`
	Pending    bool      `json:"pending"`
	// RebuildRunning is true while a devhost holds the rebuild lock.
	RebuildRunning bool `json:"rebuild_running"`
	// RebuildInterrupted is true when a rebuild's process died: the next
	// rebuild runs in any case.
	RebuildInterrupted bool `json:"rebuild_interrupted"`
	// SetMatchesApplied is true when the generated set on disk is the one
	// the last successful rebuild applied.
	SetMatchesApplied bool `json:"set_matches_applied"`
	// Interrupted lists containers with an operation to be undone.
	Interrupted []string `json:"interrupted"`
	// RestartsPending lists the containers a successful rebuild still
	// has to restart (its devhost died or was interrupted first): the
	// next command that applies anything does.
	RestartsPending []string `json:"restarts_pending"`
	LastFailure     *Failure `json:"last_failure,omitempty"`
	// Challenge is the ACME challenge ("" without ACME); with http-01,
	// CertsLastWeek counts the certificates issued in the last 7 days
	// (Let's Encrypt allows CertLimit new ones per week).
	Challenge     string `json:"acme_challenge,omitempty"`
	CertsLastWeek int    `json:"certificates_last_7_days"`
}

// HostStatus reports on the devhost's lifecycle state. It changes nothing.
func (h *Host) HostStatus() (*HostStatus, error) {
	s := &HostStatus{Interrupted: []string{}, RestartsPending: []string{}}
	if h.Cfg.ACME.Enable {
		s.Challenge = string(h.Cfg.ACME.Challenge)
		n, err := h.IssuedLastWeek()
		if err != nil {
			return nil, err
		}
		s.CertsLastWeek = n
	}
	files, err := os.ReadDir(h.Reg.Dir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("registry: %w", err)
	}
	for _, f := range files {
		if strings.HasSuffix(f.Name(), ".hcl") && !strings.HasPrefix(f.Name(), ".") {
			s.Containers++
		}
	}
	w, err := h.readWanted()
	if err != nil {
		return nil, err
	}
	a, err := h.readApplied()
	if err != nil {
		return nil, err
	}
	s.WantedGen, s.AppliedGen, s.AppliedAt = w.Gen, a.Gen, a.Time
	s.Pending = w.Gen > a.Gen
	if l, free, err := tryLock(h.paths().rebuildLock()); err == nil {
		if free {
			l.unlock()
			var ri RebuildIntent
			ok, _ := readJSON(h.paths().rebuildIntent(), &ri)
			s.RebuildInterrupted = ok || a.Forced
		} else {
			s.RebuildRunning = true
		}
	}
	// The live set is the applied one unless a change of it is in
	// progress (or was interrupted): then the set journal exists.
	_, err = os.Stat(h.paths().setJournal())
	s.SetMatchesApplied = errors.Is(err, fs.ErrNotExist)
	intents, _ := recordNames(h.paths().intentsDir())
	for _, n := range intents {
		if _, dead := h.interrupted(n); dead {
			s.Interrupted = append(s.Interrupted, n)
		}
	}
	if _, err := readJSON(h.paths().pendingRestarts(), &s.RestartsPending); err != nil {
		return nil, err
	}
	var fails []Failure
	if _, err := readJSON(h.paths().failures(), &fails); err != nil {
		return nil, err
	}
	if len(fails) > 0 {
		s.LastFailure = &fails[len(fails)-1]
	}
	return s, nil
}

// ReadSet reads a generated set from disk (nil when dir does not exist).
func ReadSet(dir string) (*generator.Set, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	s := &generator.Set{Files: map[string][]byte{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s.Files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("generated set %s: %w", dir, err)
	}
	return s, nil
}
