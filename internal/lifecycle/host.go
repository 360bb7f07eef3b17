package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/internal/runner"
)

// Host is the container lifecycle of one devhost.
type Host struct {
	Cfg    *hostconfig.Config
	Reg    *registry.Registry
	Run    runner.Runner
	Render *Renderer
	// Now is the clock (time.Now when nil); cleanup takes --now instead.
	Now func() time.Time
	// Accounts finds the homes of the users containers are shared with
	// (the passwd database when nil).
	Accounts Accounts

	p paths
	// batchTick, when set, ends each rebuild batch window instead of its
	// timer, one window per value received (tests, which cannot rely on a
	// loaded machine's timing).
	batchTick <-chan struct{}
}

// New returns a Host for cfg.
func New(cfg *hostconfig.Config, reg *registry.Registry, run runner.Runner, render *Renderer) *Host {
	return &Host{Cfg: cfg, Reg: reg, Run: run, Render: render, p: newPaths(cfg.StateDir)}
}

func (h *Host) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}

func (h *Host) paths() paths {
	if h.p.root == "" {
		h.p = newPaths(h.Cfg.StateDir)
	}
	return h.p
}

// containersDir holds the containers' root directories (the host
// configuration's containers_dir). A Config built by hand without it gets
// NixOS' default rather than "", which would make a destroyed container's
// root a path relative to the working directory.
func (h *Host) containersDir() string {
	if h.Cfg.ContainersDir != "" {
		return h.Cfg.ContainersDir
	}
	return hostconfig.DefaultContainersDir
}

// ProfilePath is the container's system profile.
func (h *Host) ProfilePath(name string) string {
	return filepath.Join(h.Cfg.ProfileDir, name, "system")
}

// HostKeyPath is the container's public ed25519 host key.
func (h *Host) HostKeyPath(name string) string {
	return filepath.Join(h.containersDir(), name, "etc", "ssh", "ssh_host_ed25519_key.pub")
}

func unit(name string) string { return "container@" + name + ".service" }

// profileTarget is the profile symlink's target ("" when there is none).
func (h *Host) profileTarget(name string) string {
	t, err := os.Readlink(h.ProfilePath(name))
	if err != nil {
		return ""
	}
	return t
}

// ProfileGeneration extracts N from a "system-N-link" target (0: none).
func ProfileGeneration(target string) int {
	s := strings.TrimSuffix(filepath.Base(target), "-link")
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return 0
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return 0
	}
	return n
}

// withRegistry runs f under the registry lock. A marker file exists while
// f runs: finding it when taking the lock means the previous holder died
// in the middle of a change, perhaps after changing the registry and
// before counting the change; a generation is then counted (bump) first,
// whose rebuild finds the change by its file's identity, and the
// temporary files its atomic writes may have left are removed.
func (h *Host) withRegistry(ctx context.Context, f func() error) error {
	unlock, err := h.Reg.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	marker := h.paths().section()
	if _, err := os.Stat(marker); err == nil {
		if _, err := h.bump(); err != nil {
			return err
		}
		if err := h.removeRegistryTemps(); err != nil {
			return err
		}
	}
	if err := atomicfile.PrivateDir(h.paths().root, privateDirPerm); err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	// No fsync: the marker guards against a killed process, not a crash
	// of the machine.
	if err := os.WriteFile(marker, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	if err := f(); err != nil {
		return err
	}
	if err := os.Remove(marker); err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	return nil
}

// creating lists the containers whose creation is in progress.
func (h *Host) creating() (map[string]bool, error) {
	names, err := recordNames(h.paths().intentsDir())
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, name := range names {
		var in Intent
		ok, err := readJSON(h.paths().intent(name), &in)
		if err != nil {
			return nil, err
		}
		if ok && in.New {
			out[in.Name] = true
		}
	}
	return out, nil
}

// decodeEntries turns snapshot bytes into containers. An entry that does
// not decode (a person broke it by hand) is an error: the set must not
// silently lose a container. Every broken entry is reported, as a
// *diag.Error with the entries' bytes, so the command line shows file,
// line and snippet and exits with 1 (the admin's input is wrong).
func (h *Host) decodeEntries(snap map[string]string) ([]*registry.Container, error) {
	out := make([]*registry.Container, 0, len(snap))
	var (
		diags hcl.Diagnostics
		files map[string][]byte
	)
	for name, src := range snap {
		path := h.Reg.Path(name)
		c, ds := registry.Decode(path, []byte(src))
		if ds.HasErrors() {
			diags = append(diags, ds...)
			if files == nil {
				files = map[string][]byte{}
			}
			files[path] = []byte(src)
			continue
		}
		out = append(out, c)
	}
	if err := diag.NewError(diags, files); err != nil {
		return nil, err
	}
	sortContainers(out)
	return out, nil
}

// bump records a registry change: the wanted generation goes up, and a
// request waits until a rebuild applied it. Nothing is rendered: the
// rebuild finds what changed. Call under the registry lock.
func (h *Host) bump() (uint64, error) {
	var w Wanted
	if _, err := readJSON(h.paths().wanted(), &w); err != nil {
		return 0, err
	}
	w.Gen++
	return w.Gen, writeJSON(h.paths().wanted(), w, 0o644)
}

func (h *Host) readApplied() (Applied, error) {
	var a Applied
	_, err := readJSON(h.paths().applied(), &a)
	return a, err
}

func (h *Host) readWanted() (Wanted, error) {
	var w Wanted
	_, err := readJSON(h.paths().wanted(), &w)
	return w, err
}

// entryFor is the first step of an operation on an existing container,
// under the registry lock: put back what earlier killed operations left,
// read the entry, and let check decide whether caller may act on it. prev
// is the entry's bytes as read (what a request records to undo the
// operation).
func (h *Host) entryFor(ctx context.Context, name string, check func(*registry.Container) error) (c *registry.Container, prev *string, err error) {
	if _, err := h.recoverOps(ctx); err != nil {
		return nil, nil, err
	}
	if err := h.recoverOwn(ctx, name); err != nil {
		return nil, nil, err
	}
	c, src, err := h.Reg.GetSource(name)
	if err != nil {
		return nil, nil, notFound(name, err)
	}
	if err := check(c); err != nil {
		return nil, nil, err
	}
	s := string(src)
	return c, &s, nil
}

// entry reads the entry of container name; a missing one is a
// *NotFoundError.
func (h *Host) entry(name string) (*registry.Container, error) {
	c, err := h.Reg.Get(name)
	return c, notFound(name, err)
}

// notFound maps registry.ErrNotFound for container name to a
// *NotFoundError; other errors pass as they are.
func notFound(name string, err error) error {
	if errors.Is(err, registry.ErrNotFound) {
		return &NotFoundError{Name: name}
	}
	return err
}

// lockChange begins an operation that changes container name: it checks
// the name and that caller is a member allowed to do what ("destroy
// containers"), then takes the container's op lock, which the caller
// unlocks. The op lock: an ensure in progress writes back the entry it
// read before its build, which would drop a change made meanwhile.
func (h *Host) lockChange(ctx context.Context, name string, caller Caller, what string) (*fileLock, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := caller.CheckMember(h.Cfg.Access, what); err != nil {
		return nil, err
	}
	return lock(ctx, h.paths().opLock(name))
}
