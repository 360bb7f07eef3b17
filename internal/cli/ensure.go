package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/lifecycle"
	"github.com/flyingcircusio/devhost/internal/limits"
)

// ensureOptions are the inputs of `devhost ensure`.
type ensureOptions struct {
	IO        *IOStreams
	Context   context.Context
	Lifecycle func() (*lifecycle.Host, error)
	Caller    func() (lifecycle.Caller, error)

	Name          string
	Channel       string
	Aliases       []string
	Environment   string
	Root          string
	ProvisionNix  string // file, "-" for stdin, "" for none
	SSHKeys       []string
	ServiceUser   string
	Force         bool
	JSON          bool
	Progress      string // auto, plain, json or none
	KeepProvision bool   // compatibility CLI

	// Limits as given; LimitsSet when any limit flag was given (then
	// they replace the container's limits, empty ones cleared).
	MemoryMax, CPUWeight, CPUQuota, TasksMax string
	LimitsSet                                bool
	ExpireAfter                              string // "" keeps, "never" clears
}

func newCmdEnsure(f *Factory) *cobra.Command {
	opts := &ensureOptions{IO: f.IO, Lifecycle: f.Lifecycle, Caller: f.Caller}
	cmd := &cobra.Command{
		Use:   "ensure NAME --channel URL [flags]",
		Short: "Create or update a container and apply it (run on the devhost, through sudo)",
		Long: `Create the container NAME, or update it, and return once it runs.

Everything is validated first, before any lock or change: the name, aliases,
channel (against the host's allowed prefixes), service user, SSH keys, and
provision.nix's syntax (nix-instantiate --parse). Bad input exits with 1 and
changes nothing.

Then the registry entry is created or updated (owner: the user who ran sudo;
a container owned by someone else is refused unless you are in the admin
group), and the container's own system is built from its channel with
restricted evaluation:

  NIX_PATH= nix-build '<nixpkgs/nixos>' -A system -I nixpkgs=CHANNEL
    -I nixos-config=<its generated configuration.nix>
    -I devhost-provision=<its provision.nix> --option restrict-eval true
    --option nix-path ""

(only the channel, the configuration and provision.nix are readable)

and installed as its profile (nix-env -p <profiles>/NAME/system --set).
The system is only built when its inputs (channel, generated configuration,
provision.nix) changed, or with --force-build. A build failure leaves the
container as it was (a new one is not registered) and exits with 1,
showing Nix's error.

Finally the host is rebuilt when its declarations changed: concurrent
requests share one rebuild, and the command returns only after a rebuild
containing its change succeeded. A failed rebuild rolls back the
containers it changed and exits with 2. The container is then started, or,
when it was running and its system changed, switched to the new system
(systemctl reload container@NAME). Running ensure again with the same
arguments changes nothing but the deployment time.`,
		Example: `  sudo devhost ensure shop --channel https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz \
      --alias www --alias admin --environment dev --provision-nix environments/dev/provision.nix
  ssh devhost sudo devhost ensure shop --channel file:///srv/channels/nixos --provision-nix - --json < provision.nix`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			opts.Name = args[0]
			for _, f := range []string{"memory-max", "cpu-weight", "cpu-quota", "tasks-max"} {
				opts.LimitsSet = opts.LimitsSet || cmd.Flags().Changed(f)
			}
			return ensureRun(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.MemoryMax, "memory-max", "", "MemoryMax= of the container's unit, e.g. 2G or 50% (empty: the host's default)")
	fl.StringVar(&opts.CPUWeight, "cpu-weight", "", "CPUWeight= of the container's unit, 1 to 10000")
	fl.StringVar(&opts.CPUQuota, "cpu-quota", "", "CPUQuota= of the container's unit, e.g. 200% for two CPUs")
	fl.StringVar(&opts.TasksMax, "tasks-max", "", "TasksMax= of the container's unit (processes and threads)")
	fl.StringVar(&opts.ExpireAfter, "expire-after", "", "destroy the container this long from now, e.g. 3d, 12h, 2w (never: no expiry; unset: keep the current one)")
	fl.StringVar(&opts.Channel, "channel", "", "channel URL (https:// or file://) the container's system is built from (required)")
	fl.StringArrayVar(&opts.Aliases, "alias", nil, "public alias: ALIAS.NAME.<public address> (repeatable)")
	fl.StringVar(&opts.Environment, "environment", "", "batou environment name (informational)")
	fl.StringVar(&opts.Root, "root", "", "deployment root the container comes from (informational, absolute path)")
	fl.StringVar(&opts.ProvisionNix, "provision-nix", "", "the deployment's provision.nix (a NixOS module); - reads it from stdin")
	fl.StringArrayVar(&opts.SSHKeys, "ssh-key", nil, "public key authorised for the user developer (repeatable)")
	fl.StringVar(&opts.ServiceUser, "service-user", "", "the environment's service user, e.g. s-shop")
	fl.BoolVar(&opts.Force, "force-build", false, "build the container's system even when its inputs are unchanged")
	fl.BoolVar(&opts.JSON, "json", false, "print the result as JSON (with the container's host key)")
	fl.StringVar(&opts.Progress, "progress", "auto", "report phases on stderr: auto (an updating line on a terminal, else nothing), plain, json (JSON lines) or none")
	return cmd
}

// ensureJSON is `devhost ensure --json`; the keys are stable.
type ensureJSON struct {
	Name         string   `json:"name"`
	Owner        string   `json:"owner"`
	State        string   `json:"state"`
	Created      bool     `json:"created"`
	Built        bool     `json:"built"`
	System       string   `json:"system,omitempty"`
	Profile      string   `json:"profile"`
	Generation   int      `json:"profile_generation"`
	Address      string   `json:"address"`
	HostAddress  string   `json:"host_address"`
	Address6     string   `json:"address6,omitempty"`
	HostAddress6 string   `json:"host_address6,omitempty"`
	Aliases      []string `json:"aliases"`
	URLs         []string `json:"urls"`
	Unit         string   `json:"unit"`
	HostRebuilt  bool     `json:"host_rebuilt"`
	AppliedGen   uint64   `json:"applied_generation"`
	Deployed     string   `json:"deployed"`
	HostKey      string   `json:"host_key"`
	ChannelInUse string   `json:"channel"`
	// Warnings (also printed to stderr): shared users' keys left out, a
	// new container near Let's Encrypt's weekly limit.
	Warnings  []string      `json:"warnings,omitempty"`
	Limits    limits.Limits `json:"limits"`
	ExpiresAt string        `json:"expires_at"`
}

// fmtRFC3339 is t in RFC 3339 (UTC), or "" for the zero time.
func fmtRFC3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// limitsAndExpiry checks the limit and expiry flags and puts them into req.
func (opts *ensureOptions) limitsAndExpiry(req *lifecycle.EnsureRequest) error {
	req.SetLimits = opts.LimitsSet
	l := limits.Limits{MemoryMax: opts.MemoryMax, CPUQuota: opts.CPUQuota}
	for _, f := range []struct {
		flag, val string
		dst       *int
	}{{"cpu-weight", opts.CPUWeight, &l.CPUWeight}, {"tasks-max", opts.TasksMax, &l.TasksMax}} {
		if f.val == "" {
			continue
		}
		n, err := limits.ParseInt(f.val)
		if err == nil && n == 0 {
			err = errors.New("use 1 or more (leave it empty for the host's default)")
		}
		if err != nil {
			return inputErrorf("ensure %s: --%s %q: %v", opts.Name, f.flag, f.val, err)
		}
		*f.dst = n
	}
	if ps := l.Problems(); len(ps) > 0 {
		return inputErrorf("ensure %s: --%s: %v", opts.Name, strings.ReplaceAll(ps[0].Field, "_", "-"), ps[0])
	}
	req.Limits = l
	switch opts.ExpireAfter {
	case "":
	case "never":
		req.NeverExpire = true
	default:
		d, err := limits.ParseLifetime(opts.ExpireAfter)
		if err != nil {
			return inputErrorf("ensure %s: --expire-after %v", opts.Name, err)
		}
		req.ExpireAfter = d
	}
	return nil
}

func ensureRun(opts *ensureOptions) error {
	ctx := orBackground(opts.Context)
	if opts.Channel == "" {
		return inputErrorf("ensure %s: --channel is required (the channel URL the container's system is built from)", opts.Name)
	}
	pr, err := progressReporter(opts.IO, opts.Progress)
	if err != nil {
		return err
	}
	h, caller, err := hostAndCaller(opts.Lifecycle, opts.Caller)
	if err != nil {
		return err
	}
	req := lifecycle.EnsureRequest{
		Progress: pr,
		Name:     opts.Name, Channel: opts.Channel, Aliases: opts.Aliases, Environment: opts.Environment,
		Root: opts.Root, ServiceUser: opts.ServiceUser, SSHKeys: opts.SSHKeys, Force: opts.Force,
		KeepProvision: opts.KeepProvision, Caller: caller,
	}
	if err := opts.limitsAndExpiry(&req); err != nil {
		return err
	}
	provName := "provision.nix"
	if opts.ProvisionNix != "" {
		provName = opts.ProvisionNix
		if provName == "-" {
			provName = "<stdin>/provision.nix"
		}
		if req.Provision, err = readProvision(opts.IO, opts.ProvisionNix, caller); err != nil {
			return err
		}
	}
	if err := h.Validate(ctx, &req, provName); err != nil {
		return err
	}
	res, err := h.Ensure(ctx, req)
	if err != nil {
		return lifecycleError(err)
	}
	c := res.Container
	printWarnings(opts.IO.ErrOut, res.Warnings)
	if opts.JSON {
		out := ensureJSON{
			Name: c.Name, Owner: c.Owner, State: string(c.State), Created: res.Created, Built: res.Built, System: res.StorePath,
			Profile: h.ProfilePath(c.Name), Generation: profileGen(res.Profile),
			Address: c.Address.String(), HostAddress: h.Cfg.Addresses.HostAddress.String(),
			Aliases: nonNil(c.Aliases), URLs: h.URLs(c), Unit: res.Unit, HostRebuilt: res.Apply.Rebuilt,
			AppliedGen: res.Apply.Gen, Deployed: c.Deployed.UTC().Format(time.RFC3339), HostKey: res.HostKey,
			ChannelInUse: c.Channel, Warnings: res.Warnings,
			Limits: c.Limits.Or(h.Cfg.Limits), ExpiresAt: fmtRFC3339(c.ExpiresAt),
		}
		if c.Address6.IsValid() {
			out.Address6, out.HostAddress6 = c.Address6.String(), h.Cfg.Addresses.HostAddress6.String()
		}
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	printEnsure(opts.IO.Out, h, res)
	return nil
}

func printEnsure(w io.Writer, h *lifecycle.Host, res *lifecycle.EnsureResult) {
	c := res.Container
	verb := "updated"
	if res.Created {
		verb = "created"
	}
	addrs := c.Address.String()
	if c.Address6.IsValid() {
		addrs += ", " + c.Address6.String()
	}
	fmt.Fprintf(w, "container %s %s (owner %s, address %s)\n", c.Name, verb, c.Owner, addrs)
	if res.Built {
		fmt.Fprintf(w, "  system: %s (profile generation %d)\n", res.StorePath, profileGen(res.Profile))
	} else {
		fmt.Fprintf(w, "  system: unchanged (profile generation %d)\n", profileGen(res.Profile))
	}
	if res.Apply.Rebuilt {
		fmt.Fprintf(w, "  host: rebuilt (generation %d)\n", res.Apply.Gen)
	} else {
		fmt.Fprintf(w, "  host: up to date (generation %d)\n", res.Apply.Gen)
	}
	fmt.Fprintf(w, "  unit: %s\n", res.Unit)
	for _, u := range h.URLs(c) {
		fmt.Fprintf(w, "  %s\n", u)
	}
}

// readProvision reads provision.nix from a file or stdin. Through sudo the
// file is opened by root, so it must belong to the invoking user: otherwise
// a user could have root read, say, /etc/shadow and show it back in a
// syntax error's snippet.
func readProvision(streams *IOStreams, path string, caller lifecycle.Caller) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = streams.In
	} else {
		f, fi, err := openProvision(path)
		if err != nil {
			return nil, &InputError{Err: fmt.Errorf("provision.nix: %w", err)}
		}
		if f == nil {
			return nil, &InputError{Err: fmt.Errorf("provision.nix: %s is not a regular file", path)}
		}
		defer func() { _ = f.Close() }()
		// (A test build's simulated users have no uid to compare with.)
		simulated := testHooks && streams.Env != nil && streams.Env(lifecycle.EnvTestUser) != ""
		if os.Geteuid() == 0 && !caller.Root && !simulated {
			st, ok := fi.Sys().(*syscall.Stat_t)
			u, err := user.Lookup(caller.User)
			if err != nil || !ok || strconv.FormatUint(uint64(st.Uid), 10) != u.Uid {
				return nil, &InputError{Err: fmt.Errorf("provision.nix: %s does not belong to %s; pass your own file, or - to read it from stdin", path, caller.User)}
			}
		}
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, lifecycle.MaxProvision+1))
	if err != nil {
		return nil, fmt.Errorf("provision.nix: %w", err)
	}
	return b, nil
}

// lifecycleError maps the lifecycle's refusals to exit status 1: the
// caller's to fix (permission, unknown or foreign name, a build of their
// own Nix code that failed). Host failures (a failed rebuild, an exhausted
// address pool, I/O) stay exit status 2.
func lifecycleError(err error) error {
	var (
		de *lifecycle.DeniedError
		nf *lifecycle.NotFoundError
		fe *lifecycle.ForeignError
		be *lifecycle.BuildError
		ne *lifecycle.NameError
		se *lifecycle.ShareError
	)
	switch {
	case errors.As(err, &de), errors.As(err, &nf), errors.As(err, &fe), errors.As(err, &be), errors.As(err, &ne), errors.As(err, &se):
		return &InputError{Err: err}
	}
	return err
}

func profileGen(target string) int { return lifecycle.ProfileGeneration(target) }

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
