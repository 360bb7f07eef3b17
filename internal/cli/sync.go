package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/codesync"
	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/environment"
	"github.com/flyingcircusio/devhost/internal/provision"
)

// syncOptions are the inputs of `devhost sync`.
type syncOptions struct {
	IO      *IOStreams
	Context context.Context
	Env     string
	Host    string
	Src     string
	Dest    string // "" = /srv/<service user>/<base name of Src>
	Root    string // as the user gave it ("" = working directory)
	Watch   bool
	JSON    bool
	// ExcludeFrom is the exclude file ("" = <Src>/.gitignore when it
	// exists).
	ExcludeFrom string
	NoDelete    bool
	// SSH and Rsync are the programs (flags, else $DEVHOST_SSH and
	// $DEVHOST_RSYNC, else from PATH).
	SSH, Rsync string
	// Quiet is the watcher's debounce.
	Quiet time.Duration
}

func newCmdSync(f *Factory) *cobra.Command {
	opts := &syncOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "sync ENV HOST SRC [DEST]",
		Short: "Copy a directory into a container as the service user, once or on every change",
		Long: `Copy the directory SRC (relative to the working directory) into the container
of HOST (its name in environments/ENV/environment.cfg, or its real name) with
rsync, over ssh_config_ENV, which devhost up writes: run devhost up ENV first.

rsync runs in the container as the environment's service user
(--rsync-path 'sudo -n -u <service_user> -- rsync'), so what it writes
belongs to that user. DEST defaults to /srv/<service_user>/<base name of SRC>;
a relative DEST is below /srv/<service_user>. The parent of DEST must exist.

DEST becomes a copy of SRC: files deleted in SRC are deleted in DEST too
(--no-delete keeps them). DEST may not be / or the service user's home or
one of its parents unless --no-delete is given.

.git is never copied. Other files are left out with an exclude file in
.gitignore syntax (--exclude-from; default SRC/.gitignore when it exists;
nested .gitignore files are not read); patterns are relative to SRC. What
is left out is also left alone in DEST.

--watch syncs once, then again whenever something in SRC changes (new
directories are watched; editors' atomic saves work), 200 ms after the last
change. A failed sync is reported and the watch goes on. Ctrl-C stops it.
Every sync prints one line; --json prints it as a JSON object instead.`,
		Example: `  devhost sync dev web ./src
  devhost sync dev web ./src app/current --watch
  devhost sync dev web . --exclude-from .syncignore --no-delete
  devhost sync dev web ./src --json | jq .files`,
		Args: rangeArgs(3, 4),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Env, opts.Host, opts.Src = args[0], args[1], args[2]
			if len(args) == 4 {
				opts.Dest = args[3]
			}
			opts.Context = cmd.Context()
			return syncRun(opts)
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			root := f.abs(opts.Root)
			switch len(args) {
			case 0:
				return environmentNames(root), cobra.ShellCompDirectiveNoFileComp
			case 1:
				return provisionedHostNames(cmd.Context(), root, args[0]), cobra.ShellCompDirectiveNoFileComp
			case 2:
				return nil, cobra.ShellCompDirectiveFilterDirs
			default:
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Root, "root", "", "the batou deployment root, which holds environments/ and ssh_config_ENV (default: the working directory)")
	fl.BoolVar(&opts.Watch, "watch", false, "sync again on every change until interrupted")
	fl.BoolVar(&opts.JSON, "json", false, "print each sync as a JSON object")
	fl.StringVar(&opts.ExcludeFrom, "exclude-from", "", "exclude file in .gitignore syntax (default SRC/.gitignore when it exists)")
	fl.BoolVar(&opts.NoDelete, "no-delete", false, "keep files in DEST that are gone from SRC")
	fl.StringVar(&opts.SSH, "ssh", "", "ssh program (default $DEVHOST_SSH, else ssh)")
	fl.StringVar(&opts.Rsync, "rsync", "", "rsync program (default $DEVHOST_RSYNC, else rsync)")
	fl.DurationVar(&opts.Quiet, "debounce", 200*time.Millisecond, "with --watch: how long SRC must be quiet before a sync")
	_ = cmd.RegisterFlagCompletionFunc("exclude-from", cobra.FixedCompletions(nil, cobra.ShellCompDirectiveDefault))
	return cmd
}

// rangeArgs is cobra.RangeArgs with an input error (exit 1).
func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.RangeArgs(lo, hi)(cmd, args); err != nil {
			return &InputError{Err: fmt.Errorf("%w\nRun '%s --help' for usage", err, cmd.CommandPath())}
		}
		return nil
	}
}

// syncLine is one sync as --json prints it.
type syncLine struct {
	Host    string `json:"host"`
	Name    string `json:"name"`
	Dest    string `json:"dest"`
	Initial bool   `json:"initial,omitempty"`
	codesync.Result
	Error string `json:"error,omitempty"`
}

func syncRun(opts *syncOptions) error {
	ctx, stop := signal.NotifyContext(orBackground(opts.Context), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	s, hostName, err := syncPlan(ctx, opts)
	if err != nil {
		return err
	}
	report := func(b codesync.Batch, res codesync.Result, err error) {
		line := syncLine{Host: hostName, Name: s.Host, Dest: s.Dest, Initial: b.Initial, Result: res}
		if err != nil {
			line.Error = err.Error()
		}
		if opts.JSON {
			_ = json.NewEncoder(opts.IO.Out).Encode(line)
			return
		}
		if err != nil {
			fmt.Fprintf(opts.IO.ErrOut, "sync to %s:%s failed: %v\n", hostName, s.Dest, err)
			return
		}
		fmt.Fprintln(opts.IO.Out, syncSummary(hostName, s.Dest, res))
	}
	if !opts.Watch {
		res, err := s.Run(ctx, opts.IO.ErrOut)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("sync %s %s: interrupted; DEST may be half copied, the next sync completes it", opts.Env, hostName)
			}
			return fmt.Errorf("sync %s %s: %w", opts.Env, hostName, err)
		}
		report(codesync.Batch{Initial: true}, res, nil)
		return nil
	}
	err = codesync.Watch(ctx, s.Src, codesync.WatchOptions{Quiet: opts.Quiet, Rules: s.Rules}, func(ctx context.Context, b codesync.Batch) error {
		res, err := s.Run(ctx, opts.IO.ErrOut)
		if ctx.Err() != nil {
			return nil
		}
		var se *codesync.Error
		if errors.As(err, &se) {
			// The container restarting, the network gone: say so and
			// keep watching; the next change tries again.
			report(b, res, err)
			return nil
		}
		if err != nil {
			return err
		}
		report(b, res, nil)
		return nil
	})
	if err != nil {
		return fmt.Errorf("sync %s %s: %w", opts.Env, hostName, err)
	}
	return nil
}

// syncSummary is the one line a sync prints.
func syncSummary(host, dest string, res codesync.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "synced %d file", res.Files)
	if res.Files != 1 {
		b.WriteString("s")
	}
	if res.Deleted > 0 {
		fmt.Fprintf(&b, ", deleted %d", res.Deleted)
	}
	fmt.Fprintf(&b, " to %s:%s in %.2fs", host, dest, res.Seconds)
	if res.Vanished {
		b.WriteString(" (some files vanished while copying; the next change syncs them)")
	}
	return b.String()
}

// syncPlan checks every input and returns the rsync to run and the host's
// name in the environment. It changes nothing.
func syncPlan(ctx context.Context, opts *syncOptions) (*codesync.Sync, string, error) {
	getenv := opts.IO.Env
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	root, display := opts.IO.deploymentRoot(opts.Root)
	env, diags := environment.Load(ctx, root, opts.Env, environment.Options{DisplayRoot: display, NoScriptChecks: true})
	var files map[string][]byte
	if env != nil {
		files = env.Files()
	}
	if err := diag.NewError(diags, files); err != nil {
		return nil, "", err
	}
	h := syncHost(env, opts.Host)
	if h == nil {
		return nil, "", inputErrorf("environment %s has no provisioned host %s (provisioned hosts: %s)", opts.Env, opts.Host, strings.Join(hostNames(env), ", "))
	}
	cfgPath, _ := provision.SSHConfigPaths(root, opts.Env)
	if _, err := os.Stat(cfgPath); err != nil {
		return nil, "", inputErrorf("%s does not exist: run `devhost up %s` first, which creates the containers and writes it", filepath.Join(display, filepath.Base(cfgPath)), opts.Env)
	}
	hosts, err := provision.ReadSSHHosts(cfgPath)
	if err != nil {
		return nil, "", err
	}
	known := false
	for _, sh := range hosts {
		known = known || (h.RealName != "" && sh.Real == h.RealName)
	}
	if !known {
		return nil, "", inputErrorf("%s has no entry for host %s: run `devhost up %s --host %s` first", filepath.Join(display, filepath.Base(cfgPath)), h.Name, opts.Env, h.Name)
	}

	src := opts.Src
	if !filepath.IsAbs(src) {
		src = filepath.Join(opts.IO.Dir, src)
	}
	src = filepath.Clean(src)
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return nil, "", inputErrorf("SRC %s: not a directory (sync copies a directory's contents)", opts.Src)
	}

	user := h.ServiceUser.Value
	home := ""
	if user != "" {
		home = "/srv/" + user
	}
	dest := opts.Dest
	switch {
	case dest == "" && home == "":
		return nil, "", inputErrorf("host %s has no service_user: give DEST, an absolute path in the container", h.Name)
	case dest == "":
		dest = path.Join(home, filepath.Base(src))
	case !path.IsAbs(dest) && home == "":
		return nil, "", inputErrorf("DEST %s: host %s has no service_user, so DEST must be an absolute path", opts.Dest, h.Name)
	case !path.IsAbs(dest):
		dest = path.Join(home, dest)
	}
	dest = path.Clean(dest)
	if !opts.NoDelete && (dest == "/" || dest == home || strings.HasPrefix(home+"/", dest+"/")) {
		return nil, "", inputErrorf("DEST %s would delete everything in it that is not in SRC; sync into a directory of its own (e.g. %s) or pass --no-delete", dest, path.Join(firstOf(home, "/srv/app"), filepath.Base(src)))
	}

	rules, err := syncRules(opts, src)
	if err != nil {
		return nil, "", err
	}
	s := &codesync.Sync{
		Rsync: firstOf(opts.Rsync, getenv("DEVHOST_RSYNC"), "rsync"), SSH: firstOf(opts.SSH, getenv("DEVHOST_SSH"), "ssh"),
		SSHConfig: cfgPath, Host: h.RealName, ServiceUser: user, Src: src, Dest: dest, Rules: rules, Delete: !opts.NoDelete,
	}
	if err := s.Validate(); err != nil {
		return nil, "", &InputError{Err: err}
	}
	return s, h.Name, nil
}

// syncRules reads the exclude file: --exclude-from, else SRC/.gitignore.
func syncRules(opts *syncOptions, src string) (*codesync.Rules, error) {
	file, shown := filepath.Join(src, ".gitignore"), filepath.Join(opts.Src, ".gitignore")
	if opts.ExcludeFrom != "" {
		file, shown = opts.ExcludeFrom, opts.ExcludeFrom
		if !filepath.IsAbs(file) {
			file = filepath.Join(opts.IO.Dir, file)
		}
	}
	fh, err := os.Open(file)
	if opts.ExcludeFrom == "" && errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, inputErrorf("exclude file %s: %v", shown, err)
	}
	defer func() { _ = fh.Close() }()
	rules, err := codesync.ParseRules(shown, fh)
	if err != nil {
		return nil, &InputError{Err: fmt.Errorf("exclude file %w", err)}
	}
	return rules, nil
}

// syncHost finds a provisioned host by its name in the environment or its
// real name.
func syncHost(env *environment.Environment, name string) *environment.Host {
	for _, h := range env.Provisioned() {
		if h.Name == name || (h.RealName != "" && h.RealName == name) {
			return h
		}
	}
	return nil
}

func hostNames(env *environment.Environment) []string {
	var out []string
	for _, h := range env.Provisioned() {
		out = append(out, h.Name)
	}
	return out
}

// environmentNames lists the environments below a deployment root, for
// shell completion.
func environmentNames(root string) []string {
	ms, _ := filepath.Glob(filepath.Join(root, "environments", "*", "environment.cfg"))
	var out []string
	for _, m := range ms {
		out = append(out, filepath.Base(filepath.Dir(m)))
	}
	sort.Strings(out)
	return out
}

// provisionedHostNames lists an environment's provisioned hosts, for shell
// completion; nothing when the environment cannot be read.
func provisionedHostNames(ctx context.Context, root, env string) []string {
	e, _ := environment.Load(orBackground(ctx), root, env, environment.Options{NoScriptChecks: true})
	if e == nil {
		return nil
	}
	return hostNames(e)
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
