package provision

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/flyingcircusio/devhost/internal/environment"
	"github.com/flyingcircusio/devhost/internal/inputfile"
	"github.com/flyingcircusio/devhost/internal/progress"
)

// Options of one `devhost up` run.
type Options struct {
	// Env is the environment, loaded and validated by the caller (devhost
	// check's rules: nothing is touched when it has errors).
	Env *environment.Environment
	// Hosts restricts the run to these hosts (names in the environment or
	// real names); empty means every provisioned host.
	Hosts []string
	// Rebuild destroys each container first and rotates the environment's
	// key (only when the run covers every host: the other containers still
	// trust the old key).
	Rebuild bool
	// DryRun plans without reserving, writing or connecting.
	DryRun bool
	// Strict makes a failed rebuild inside a container fatal.
	Strict bool
	// ExpireAfter, when positive, replaces every host's
	// provision-expire-after (devhost up --expire-after).
	ExpireAfter time.Duration
	// Identity, when set, is an existing private key ssh_config names
	// instead of the environment's own key, which is then neither created,
	// rotated nor sent to the devhost: for an old devhost (--compat) that
	// only authorises batou's well-known key.
	Identity string
	// Secrets are decrypted [component:…] values (component → attribute →
	// value); they are added to the environment's overrides.
	Secrets map[string]map[string]string
	// Devhost returns the client for a provisioner's host.
	Devhost func(host string) Devhost
	// SSH, Bash and Rsync are the programs used ("" = from PATH).
	SSH, Bash, Rsync string
	// Home is the user's home directory (~/.ssh/config is included when it
	// exists); BaseEnv the environment provision.sh, ssh and rsync
	// inherit, less the secret variables (secrets.Scrub).
	Home    string
	BaseEnv []string
	// TempDir is where the wrapper's private directory is made.
	TempDir string
	// Progress receives progress and warnings; ScriptOut the output of
	// provision.sh and of the rebuild inside the containers. Hosts run at
	// once: both get whole lines, provision.sh's prefixed "HOST| ".
	Progress  io.Writer
	ScriptOut io.Writer
	// Events, when set, returns where a host's phases go (its ensure's,
	// reported by the devhost, then provisioning and done or failed).
	Events func(host string) progress.Reporter
}

// HostResult is one container after the run.
type HostResult struct {
	Host    string   `json:"host"` // name in the environment
	Name    string   `json:"name"` // the container's real name
	Devhost string   `json:"devhost"`
	Channel string   `json:"channel"`
	Aliases []string `json:"aliases"`
	State   string   `json:"state"`
	Address string   `json:"address,omitempty"`
	URLs    []string `json:"urls"`
	// NewName: the name was reserved in this run.
	NewName bool `json:"new_name"`
	// Rebuild is the outcome of the container's own rebuild: "ok",
	// "failed", "skipped" (nothing to run), or "" (not run: dry run).
	Rebuild  string   `json:"rebuild,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// Result of a run.
type Result struct {
	Environment string       `json:"environment"`
	DryRun      bool         `json:"dry_run"`
	SSHConfig   string       `json:"ssh_config"`
	KnownHosts  string       `json:"known_hosts"`
	Key         string       `json:"key"`
	KeyRotated  bool         `json:"key_rotated"`
	Hosts       []HostResult `json:"hosts"`
}

// InputError is a problem with what the user asked for (exit status 1).
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// RebuildError is a container whose own rebuild failed under --strict.
type RebuildError struct {
	Host, Name string
	Status     int
}

func (e *RebuildError) Error() string {
	return fmt.Sprintf("container %s (%s): rebuild inside the container failed with exit status %d (--strict)", e.Host, e.Name, e.Status)
}

// componentVars returns the COMPONENT_<COMPONENT>_<ATTRIBUTE> variables of
// every override and secret of the environment, upper-cased as batou does.
func componentVars(env *environment.Environment, secrets map[string]map[string]string) ([]string, error) {
	vals := map[string]string{}
	var order []string
	set := func(k, val string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = val
	}
	overridden := map[[2]string]bool{}
	for _, o := range env.Overrides {
		for _, opt := range o.Options {
			k, export, err := env.OverrideVariable(o, opt)
			if err != nil {
				return nil, &InputError{Err: err}
			}
			if export {
				set(k, opt.Value())
			}
			overridden[[2]string{o.Component, opt.Name()}] = true
		}
	}
	comps := make([]string, 0, len(secrets))
	for c := range secrets {
		comps = append(comps, c)
	}
	sort.Strings(comps)
	for _, c := range comps {
		attrs := make([]string, 0, len(secrets[c]))
		for a := range secrets[c] {
			attrs = append(attrs, a)
		}
		sort.Strings(attrs)
		for _, a := range attrs {
			if overridden[[2]string{c, a}] {
				// batou's DuplicateOverride: the deployment would fail.
				return nil, &InputError{Err: fmt.Errorf("secrets: [component:%s] %s is also set in environment.cfg; batou refuses an attribute given twice (DuplicateOverride): remove one of them", c, a)}
			}
			k, err := environment.ComponentVariable(c, a, secrets[c][a])
			if err != nil {
				return nil, &InputError{Err: fmt.Errorf("secrets: %w", err)}
			}
			set(k, secrets[c][a])
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vals[k])
	}
	return out, nil
}

func (o *Options) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// selectHosts returns the provisioned hosts the run covers.
func selectHosts(env *environment.Environment, only []string) ([]*environment.Host, error) {
	prov := env.Provisioned()
	if len(only) == 0 {
		return prov, nil
	}
	var out []*environment.Host
	for _, want := range only {
		var found *environment.Host
		for _, h := range prov {
			if h.Name == want || (h.RealName != "" && h.RealName == want) {
				found = h
			}
		}
		if found == nil {
			var have []string
			for _, h := range prov {
				have = append(have, h.Name)
			}
			return nil, &InputError{Err: fmt.Errorf("--host %s: environment %s has no provisioned host of that name (provisioned hosts: %s)",
				want, env.Name, strings.Join(have, ", "))}
		}
		out = append(out, found)
	}
	return out, nil
}

func aliasNames(h *environment.Host) []string {
	out := make([]string, len(h.Aliases))
	for i, a := range h.Aliases {
		out[i] = a.Name
	}
	return out
}

func urls(h *environment.Host, real string) []string {
	dev := h.Provisioner.Host.Value
	out := []string{fmt.Sprintf("https://%s.%s/", real, dev)}
	for _, a := range h.Aliases {
		out = append(out, fmt.Sprintf("https://%s.%s.%s/", a.Name, real, dev))
	}
	return out
}

// Up brings every selected container of the environment up to date, in
// the order batou provisions them: names, key, ensure on the devhost,
// ssh_config, provision.sh, the container's own rebuild.
func Up(ctx context.Context, o Options) (*Result, error) {
	env := o.Env
	hosts, err := selectHosts(env, o.Hosts)
	if err != nil {
		return nil, err
	}
	compVars, err := componentVars(env, o.Secrets)
	if err != nil {
		return nil, err
	}
	cfgPath, khPath := SSHConfigPaths(env.Root, env.Name)
	privPath, _ := KeyPaths(env.Root, env.Name)
	res := &Result{Environment: env.Name, DryRun: o.DryRun, SSHConfig: cfgPath, KnownHosts: khPath, Key: privPath}
	all := len(hosts) == len(env.Provisioned())
	if o.DryRun {
		for _, h := range hosts {
			r := HostResult{Host: h.Name, Name: h.RealName, Devhost: h.Provisioner.Host.Value,
				Channel: h.Provisioner.Channel.Value, Aliases: aliasNames(h), State: "planned"}
			if r.Name == "" {
				r.Name, r.NewName = "<name>", true
			}
			r.URLs = urls(h, r.Name)
			res.Hosts = append(res.Hosts, r)
		}
		res.KeyRotated = o.Rebuild && all
		return res, nil
	}

	// 1. Names: reserve on the devhost, remember in hostmap.json at once,
	// so an interrupted run keeps the name it got.
	reserved := map[string]bool{}
	err = env.AssignNames(func(h *environment.Host) (string, error) {
		o.progress("%s: reserving a name on %s", h.Name, h.Provisioner.Host.Value)
		n, err := o.Devhost(h.Provisioner.Host.Value).Reserve(ctx)
		if err == nil {
			reserved[h.Name] = true
		}
		return n, err
	})
	// Like batou at every load: the whole map is written (or the file
	// removed when no name differs), also after a failure, so names
	// reserved so far are kept for the next run.
	if serr := env.HostMap.Save(); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return nil, err
	}

	// 2. Key.
	var kp KeyPair
	var sshKeys []string
	if o.Identity != "" {
		kp.PrivatePath = o.Identity
		res.Key = o.Identity
	} else {
		rotate := o.Rebuild && all
		if o.Rebuild && !all {
			o.progress("warning: --rebuild with --host keeps the environment's ssh key (the other containers still use it); run --rebuild without --host to rotate it")
		}
		if kp, err = EnsureKey(env.Root, env.Name, rotate); err != nil {
			return nil, err
		}
		res.KeyRotated = rotate
		if kp.Created {
			o.progress("ssh key %s created", kp.PrivatePath)
		}
		sshKeys = []string{kp.Public}
	}
	var nixSrc []byte
	if env.Provision.NixExists {
		if nixSrc, err = inputfile.Read(filepath.Join(env.Dir, "provision.nix"), environment.MaxProvisionNix); err != nil {
			return nil, fmt.Errorf("provision.nix: %w", err)
		}
	}
	ssh := orDefault(o.SSH, "ssh")
	// 3.–5. per host, several hosts at once (each waits minutes for its
	// build and the shared host rebuild); the files all hosts share,
	// known_hosts and ssh_config, are written one host at a time.
	out, scriptOut := &lineMux{w: o.Progress}, &lineMux{w: o.ScriptOut}
	if sameWriter(o.Progress, o.ScriptOut) {
		scriptOut = out // one lock for one writer
	}
	u := &upRun{o: &o, env: env, compVars: compVars, kp: kp, sshKeys: sshKeys, nixSrc: nixSrc, ssh: ssh, cfgPath: cfgPath, khPath: khPath,
		out: out, scriptOut: scriptOut}
	devs := make([]Devhost, len(hosts))
	for i, h := range hosts {
		devs[i] = o.Devhost(h.Provisioner.Host.Value) // not concurrently: the caller may cache
	}
	results := make([]*HostResult, len(hosts))
	errs := make([]error, len(hosts))
	sem := make(chan struct{}, MaxConcurrentHosts)
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r := HostResult{Host: h.Name, Name: h.RealName, Devhost: h.Provisioner.Host.Value,
				Channel: h.Provisioner.Channel.Value, Aliases: aliasNames(h), NewName: reserved[h.Name]}
			ev := o.events(h.Name)
			pr := progress.Start(ev, r.Name, nil)
			if err := u.host(ctx, devs[i], h, &r, ev, pr); err != nil {
				pr.Phase(progress.Failed, "")
				errs[i] = fmt.Errorf("%s (%s): %w", h.Name, r.Name, err)
				return
			}
			pr.Phase(progress.Done, "")
			results[i] = &r
		})
	}
	wg.Wait()
	for _, r := range results {
		if r != nil {
			res.Hosts = append(res.Hosts, *r)
		}
	}
	return res, errors.Join(errs...)
}

// MaxConcurrentHosts bounds the hosts `devhost up` ensures at once.
const MaxConcurrentHosts = 4

// upRun is what the hosts of one run share.
type upRun struct {
	o               *Options
	env             *environment.Environment
	kp              KeyPair
	sshKeys         []string
	nixSrc          []byte
	compVars        []string
	ssh             string
	cfgPath, khPath string
	// files serialises what several hosts share: known_hosts and
	// ssh_config, and each host's provision.sh and own rebuild, whose ssh
	// may add to known_hosts (accept-new in compatibility mode) while
	// another host would rewrite it. The ensures, the long part, overlap.
	files          sync.Mutex
	out, scriptOut *lineMux
}

// events is where host's phases go (nil: nowhere).
func (o *Options) events(host string) progress.Reporter {
	if o.Events == nil {
		return nil
	}
	return o.Events(host)
}

// host ensures one host's container, writes ssh_config and runs its
// provision.sh and own rebuild.
func (u *upRun) host(ctx context.Context, dev Devhost, h *environment.Host, r *HostResult, ev progress.Reporter, pr *progress.Tracker) error {
	o, env := u.o, u.env
	progressf := func(format string, args ...any) { u.out.printf(format, args...) }
	// 3. Ensure (after destroying on --rebuild).
	if o.Rebuild {
		progressf("%s: destroying container %s (--rebuild)", h.Name, r.Name)
		if err := dev.Destroy(ctx, r.Name); err != nil {
			return err
		}
	}
	progressf("%s: ensuring container %s on %s", h.Name, r.Name, r.Devhost)
	req := EnsureRequest{
		Name: r.Name, Channel: r.Channel, Aliases: r.Aliases, Environment: env.Name, Root: env.Root,
		ServiceUser: h.ServiceUser.Value, SSHKeys: u.sshKeys, ProvisionNix: u.nixSrc, Progress: ev,
		Limits: h.Limits, ExpireAfter: cmp.Or(o.ExpireAfter, h.ExpireAfter),
	}
	er, err := dev.Ensure(ctx, req)
	if err != nil {
		return err
	}
	r.State, r.Address = er.State, er.Address
	// The devhost's own warnings (a new container near Let's Encrypt's
	// weekly limit).
	r.Warnings = append(r.Warnings, er.Warnings...)
	if er.HostKey == "" {
		r.Warnings = append(r.Warnings, "the devhost did not report the container's host key; ssh accepts the first key it sees (StrictHostKeyChecking accept-new)")
	}
	if err := u.writeKeys(r, er.HostKey); err != nil {
		return err
	}

	// 4. provision.sh, one host at a time (files).
	u.files.Lock()
	defer u.files.Unlock()
	if env.Provision.ShExists || env.Provision.NixCopied {
		pr.Phase(progress.Provisioning, "provision.sh")
		progressf("%s: running provision.sh for %s", h.Name, r.Name)
		vars := []string{
			"PROVISION_CONTAINER=" + r.Name,
			"PROVISION_HOST=" + r.Devhost,
			"PROVISION_CHANNEL=" + r.Channel,
			"PROVISION_ALIASES=" + strings.Join(r.Aliases, " "),
			"SSH_CONFIG=" + u.cfgPath,
			"RSYNC_RSH=" + RsyncRSH(u.ssh, u.cfgPath),
		}
		if o.Rebuild {
			vars = append(vars, "PROVISION_REBUILD=1")
		}
		s := &Script{
			Bash: o.Bash, SSH: u.ssh, Rsync: o.Rsync, EnvDir: env.Dir,
			HasScript: env.Provision.ShExists, CopyNix: env.Provision.NixCopied,
			ServiceUser: h.ServiceUser.Value, TempDir: o.TempDir,
			Env: append(append(withoutKeys(o.BaseEnv, "PROVISION_REBUILD"), vars...), u.compVars...),
		}
		// Its output, line by line with the host's name: hosts run at once.
		w := u.scriptOut.writer(h.Name + "| ")
		err = s.Run(ctx, w, w)
		w.Flush()
		if err != nil {
			var se *ScriptError
			if errors.As(err, &se) {
				se.File = env.Provision.ShFile
				return se
			}
			return err
		}
	}

	// 5. The container's own rebuild.
	pr.Phase(progress.Provisioning, "the container's own rebuild")
	if r.Rebuild, err = o.rebuildInside(ctx, u.out, u.ssh, u.cfgPath, h, r.Name); err != nil {
		return err
	}
	if r.Rebuild == "failed" {
		r.Warnings = append(r.Warnings, "the rebuild inside the container failed (see above); continuing, a later deployment may repair it")
	}
	r.URLs = urls(h, r.Name)
	return nil
}

// writeKeys records the container's host key in known_hosts and writes
// ssh_config, one host at a time.
func (u *upRun) writeKeys(r *HostResult, hostKey string) error {
	u.files.Lock()
	defer u.files.Unlock()
	// Read afresh: in compatibility mode ssh itself records the keys it
	// accepted (accept-new) while another host's provision.sh ran;
	// writing an older copy would drop them.
	kh, err := ReadKnownHosts(u.khPath)
	if err != nil {
		return err
	}
	if u.o.Rebuild {
		kh.Remove(r.Name)
	}
	if hostKey != "" {
		kh[r.Name] = hostKey
	}
	if err := kh.Write(u.khPath); err != nil {
		return err
	}
	// ssh_config covers every provisioned host with a name, so
	// `ssh -F ssh_config_<env> <host>` works for all of them.
	return WriteSSHConfig(u.cfgPath, sshConfigFor(u.env, u.kp.PrivatePath, u.khPath, kh, u.o.Home))
}

// lineMux writes whole lines of several writers to one, so that the
// output of hosts running at once is never mixed within a line.
type lineMux struct {
	mu sync.Mutex
	w  io.Writer
}

func (m *lineMux) printf(format string, args ...any) {
	m.line(fmt.Sprintf(format, args...))
}

func (m *lineMux) line(s string) {
	if m.w == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _ = io.WriteString(m.w, s+"\n")
}

// sameWriter reports whether a and b are the same writer, which then
// needs one lineMux: two would each lock, and write to it at once.
func sameWriter(a, b io.Writer) bool {
	t := reflect.TypeOf(a)
	return a != nil && t == reflect.TypeOf(b) && t.Comparable() && a == b
}

// writer returns a writer of lines prefixed with prefix.
func (m *lineMux) writer(prefix string) *progress.LineWriter {
	return &progress.LineWriter{Line: func(s string) { m.line(prefix + s) }}
}

// rebuildInside runs batou's `fc-manage -c` in the container when the
// container has it (Flying Circus platform channels). A devhost container's
// system is built by ensure on the devhost, so without fc-manage there is
// nothing more to run. A failure is reported loudly and the run continues,
// as batou does, unless --strict.
func (o *Options) rebuildInside(ctx context.Context, out *lineMux, ssh, cfgPath string, h *environment.Host, name string) (string, error) {
	remote := "command -v fc-manage >/dev/null 2>&1 || exit 100; exec sudo -n -i fc-manage -c"
	cmd := exec.CommandContext(ctx, ssh, "-F", cfgPath, name, remote)
	cmd.Env = childEnv(o.BaseEnv)
	output, err := cmd.CombinedOutput()
	if err == nil {
		out.printf("%s: container %s rebuilt itself (fc-manage -c)", h.Name, name)
		return "ok", nil
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	status := -1
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		status = ee.ExitCode()
	}
	if status == 100 {
		out.printf("%s: container %s has no fc-manage; its system was built by ensure", h.Name, name)
		return "skipped", nil
	}
	// One write: the lines of hosts running at once stay apart.
	out.line(fmt.Sprintf("\n!!! %s (%s): the rebuild inside the container failed with exit status %d. Output:\n%s",
		h.Name, name, status, strings.TrimRight(string(output), "\n")))
	if o.Strict {
		return "failed", &RebuildError{Host: h.Name, Name: name, Status: status}
	}
	out.printf("!!! %s: WARNING: continuing despite the failed rebuild (as batou does); use --strict to stop here.\n", h.Name)
	return "failed", nil
}

func sshConfigFor(env *environment.Environment, key, kh string, keys KnownHosts, home string) SSHConfig {
	c := SSHConfig{IdentityFile: key, KnownHosts: kh, Includes: DefaultIncludes(home, env.Root)}
	for _, h := range env.Provisioned() {
		if h.RealName == "" {
			continue
		}
		c.Hosts = append(c.Hosts, SSHHost{Real: h.RealName, EnvName: h.Name, Devhost: h.Provisioner.Host.Value, HostKey: keys[h.RealName]})
	}
	return c
}

// RsyncRSH is RSYNC_RSH for ssh with the environment's ssh_config, as
// batou sets it ("ssh -F <file>"), quoted the way rsync itself splits the
// variable: whitespace separates words, '…' quotes, and a quote is doubled
// inside quotes. (rsync knows no backslash escapes, so a shell-quoted
// path with an apostrophe would name another file.)
func RsyncRSH(ssh, cfgPath string) string {
	q := func(w string) string {
		if w != "" && !strings.ContainsAny(w, " \t\n'\"") {
			return w
		}
		return "'" + strings.ReplaceAll(w, "'", "''") + "'"
	}
	return q(ssh) + " -F " + q(cfgPath)
}

func withoutKeys(env []string, keys ...string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := strings.HasPrefix(k, "COMPONENT_") || strings.HasPrefix(k, "PROVISION_")
		for _, x := range keys {
			drop = drop || k == x
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}
