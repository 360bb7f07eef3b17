package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/environment"
	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/flyingcircusio/devhost/internal/progress"
	"github.com/flyingcircusio/devhost/internal/provision"
	"github.com/flyingcircusio/devhost/internal/secrets"
)

// upOptions are the inputs of `devhost up`.
type upOptions struct {
	IO       *IOStreams
	Context  context.Context
	Env      string
	Root     string // as the user gave it ("" = working directory)
	Hosts    []string
	Rebuild  bool
	DryRun   bool
	JSON     bool
	Progress string // auto, plain, json or none
	Compat   bool
	Strict   bool
	// SSH is the ssh program (--ssh, else $DEVHOST_SSH, else "ssh").
	SSH string
	// Identity replaces the environment's own key (--identity).
	Identity string
	// ExpireAfter (--expire-after) overrides provision-expire-after.
	ExpireAfter string
	// Load tunes environment.Load (tests pick the check commands).
	Load environment.Options
}

func newCmdUp(f *Factory) *cobra.Command {
	opts := &upOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "up ENV",
		Short: "Create or update the containers of a batou environment (batou's provisioning step)",
		Long: `Bring every provisioned host of environments/ENV/environment.cfg up on its
devhost, as batou's container provisioner does before a deployment:

 1. Every problem of the environment is reported first (as devhost check
    does); nothing is touched when there is one.
 2. Hosts with provision-dynamic-hostname = True get a name reserved on the
    devhost (11 hex digits), remembered in environments/ENV/hostmap.json.
 3. The environment's own ed25519 key (ssh_key_ENV in the deployment root,
    rotated by --rebuild) is authorised in the containers.
 4. "devhost ensure" runs on the devhost over ssh (with sudo); with --compat
    the devhost is asked the old way, "fc-build-dev-container ensure" (that
    devhost only authorises batou's well-known key: pass it with --identity);
    a devhost without the devhost command is spoken to that way anyway.
    --rebuild destroys each container first.
 5. ssh_config_ENV and ssh_known_hosts_ENV are written, with the containers'
    host keys pinned: "ssh -F ssh_config_ENV HOST" works.
 6. environments/ENV/provision.sh runs with COPY, RUN and ECHO, and the
    PROVISION_*, SSH_CONFIG, RSYNC_RSH and COMPONENT_<NAME>_<ATTR> variables
    (overrides and decrypted secrets); provision.nix is copied in unless
    provision.sh mentions it.
 7. The container rebuilds itself (fc-manage, where it exists). A failure is
    a loud warning; --strict makes it fatal.

Then each container's name, state and URLs are printed (--json: as data).

The devhost is reached with ssh (--ssh or $DEVHOST_SSH names the program),
with the deployment's ssh_config when it has one, as batou does.`,
		Example: `  devhost up dev
  devhost up dev --host web --rebuild
  devhost up dev --compat --identity insecure-private.key
  devhost up --root examples/shop --dry-run dev
  devhost up dev --json | jq -r '.hosts[].urls[]'`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Env = args[0]
			opts.Context = cmd.Context()
			return upRun(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Root, "root", "", "the batou deployment root, which holds environments/ (default: the working directory)")
	fl.StringArrayVar(&opts.Hosts, "host", nil, "only this host (name in the environment or real name); repeatable")
	fl.BoolVar(&opts.Rebuild, "rebuild", false, "destroy and recreate the containers, and rotate the environment's ssh key")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "show what would be done; reserve, write and connect nothing")
	fl.BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	fl.StringVar(&opts.Progress, "progress", "auto", "show each host's phases on stderr: auto (one updating line per host on a terminal, else plain lines), plain, json (JSON lines) or none")
	fl.BoolVar(&opts.Compat, "compat", false, "speak batou 2.3/2.4's fc-build-dev-container to the devhost")
	fl.StringVar(&opts.ExpireAfter, "expire-after", "", "destroy the containers this long from now, e.g. 3d, 12h, 2w (overrides provision-expire-after)")
	fl.BoolVar(&opts.Strict, "strict", false, "fail when a container's own rebuild fails")
	fl.StringVar(&opts.SSH, "ssh", "", "ssh program (default $DEVHOST_SSH, else ssh)")
	fl.StringVar(&opts.Identity, "identity", "", "use this private key instead of the environment's own (with --compat: batou's insecure-private.key, the only key an old devhost authorises)")
	return cmd
}

func upRun(opts *upOptions) error {
	ctx := orBackground(opts.Context)
	// Ctrl-C, SIGTERM and SIGHUP (the terminal or ssh session closed)
	// cancel the run: the provision wrapper is removed and nothing is left
	// half-written. Uncaught, SIGHUP would end devhost on the spot.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	getenv := opts.IO.Env
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	root, display := opts.IO.deploymentRoot(opts.Root)
	lo := opts.Load
	lo.DisplayRoot = display
	env, diags := environment.Load(ctx, root, opts.Env, lo)
	var files map[string][]byte
	if env != nil {
		files = env.Files()
	}
	if err := diag.NewError(diags, files); err != nil {
		return err
	}
	if len(diags) > 0 {
		if err := diag.Write(opts.IO.ErrOut, diags, files, opts.IO.ColorErr); err != nil {
			return fmt.Errorf("up: %w", err)
		}
	}
	if len(env.Provisioned()) == 0 {
		return inputErrorf("environment %s has no provisioned hosts: add [provisioner:default] with method = devhost (or fc-nixos-dev-container), host and channel", opts.Env)
	}

	home := getenv("HOME")
	sec := &secrets.Secrets{}
	if !opts.DryRun {
		// batou's 1Password reference (op://…), or the passphrase itself.
		pass := secrets.PassphraseFromEnv(ctx, getenv("BATOU_AGE_IDENTITY_PASSPHRASE"), "op")
		var err error
		sec, err = secrets.Load(ctx, env.Dir, secrets.Options{
			Identities: secrets.ParseIdentityList(getenv("BATOU_AGE_IDENTITIES")),
			Home:       home, Passphrase: pass,
		})
		if err != nil {
			return &InputError{Err: err}
		}
	}

	identity := opts.Identity
	if identity != "" {
		if !filepath.IsAbs(identity) {
			identity = filepath.Join(opts.IO.Dir, identity)
		}
		if _, err := os.Stat(identity); err != nil {
			return inputErrorf("--identity %s: %v", opts.Identity, err)
		}
	}
	sshProg, sshOpts := devhostSSH(opts.SSH, getenv, root)
	events, msgs, err := upProgress(opts.IO, opts.Progress)
	if err != nil {
		return err
	}
	devhosts := map[string]*provision.SSHDevhost{}
	var expire time.Duration
	if opts.ExpireAfter != "" {
		d, err := limits.ParseLifetime(opts.ExpireAfter)
		if err != nil {
			return inputErrorf("up %s: --expire-after %v", opts.Env, err)
		}
		expire = d
	}
	res, err := provision.Up(ctx, provision.Options{
		Env: env, Hosts: opts.Hosts, Rebuild: opts.Rebuild, DryRun: opts.DryRun, Strict: opts.Strict,
		ExpireAfter: expire,
		Identity:    identity,
		Secrets:     sec.Components,
		Devhost: func(host string) provision.Devhost {
			d := devhosts[host]
			if d == nil {
				d = &provision.SSHDevhost{SSH: sshProg, Options: sshOpts, Host: host, Compat: opts.Compat, AutoCompat: true,
					Notice: func(msg string) { fmt.Fprintf(msgs, "warning: %s\n", msg) },
					// Lines, under a lock: the hosts on one devhost run at once.
					Stderr: &progress.LineWriter{Line: func(l string) { fmt.Fprintf(msgs, "  [%s] %s\n", host, l) }}}
				devhosts[host] = d
			}
			return d
		},
		SSH: sshProg, Home: home, BaseEnv: os.Environ(),
		Progress: msgs, ScriptOut: prefixWriter(msgs, "  "), Events: events,
	})
	msgs.Flush()
	if err != nil {
		var (
			ie *provision.InputError
			re *provision.RemoteError
		)
		if errors.As(err, &ie) {
			return &InputError{Err: err}
		}
		if errors.As(err, &re) && re.Status == 1 {
			// The devhost refused the request as bad input (its exit
			// status 1): a name owned by someone else, say.
			return &InputError{Err: fmt.Errorf("up %s: %w", opts.Env, err)}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("up %s: interrupted; the next `devhost up %s` continues from here: %w", opts.Env, opts.Env, err)
		}
		return fmt.Errorf("up %s: %w", opts.Env, err)
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return writeUp(opts.IO.Out, res)
}

func writeUp(w io.Writer, res *provision.Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, h := range res.Hosts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.Host, h.Name, h.State, strings.Join(h.URLs, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, h := range res.Hosts {
		for _, warn := range h.Warnings {
			fmt.Fprintf(w, "warning: %s (%s): %s\n", h.Host, h.Name, warn)
		}
	}
	if !res.DryRun {
		// Quoted: the line is meant to be pasted into a shell.
		fmt.Fprintf(w, "ssh: ssh -F %s <host>\n", provision.Quote(res.SSHConfig))
	}
	return nil
}

// prefixWriter prefixes every line written to w, so the output of remote
// commands and provision.sh stands apart from devhost's own messages.
func prefixWriter(w io.Writer, prefix string) io.Writer {
	return &linePrefixer{w: w, prefix: prefix, bol: true}
}

type linePrefixer struct {
	w      io.Writer
	prefix string
	bol    bool
}

func (p *linePrefixer) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if p.bol {
			if _, err := io.WriteString(p.w, p.prefix); err != nil {
				return 0, err
			}
			p.bol = false
		}
		i := strings.IndexByte(string(b), '\n')
		if i < 0 {
			_, err := p.w.Write(b)
			return n, err
		}
		if _, err := p.w.Write(b[:i+1]); err != nil {
			return 0, err
		}
		p.bol = true
		b = b[i+1:]
	}
	return n, nil
}
