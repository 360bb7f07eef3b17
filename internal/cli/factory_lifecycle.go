package cli

import (
	"context"
	"fmt"
	"log/slog"
	"log/syslog"
	"os"
	"os/user"
	"syscall"

	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/lifecycle"
	"github.com/flyingcircusio/devhost/internal/runner"
	"github.com/flyingcircusio/devhost/templates"
)

// Lifecycle assembles the container lifecycle of this devhost: host
// configuration, registry, templates, and a runner whose every command is
// logged to the journal. Under sudo it refuses a host configuration that
// the invoking user could have written, since the configuration names the
// commands devhost runs as root.
func (f *Factory) Lifecycle() (*lifecycle.Host, error) {
	cfg, err := f.HostConfig()
	if err != nil {
		return nil, err
	}
	if err := checkTrustedConfig(cfg.Path, f.IO.Env); err != nil {
		return nil, err
	}
	reg, err := f.Registry()
	if err != nil {
		return nil, err
	}
	tmpl, err := loadTemplates(cfg, f.IO.Env)
	if err != nil {
		return nil, err
	}
	run := &runner.Exec{Timeout: cfg.Commands.Timeout, Logger: journalLogger()}
	if forSudoUser(f.IO.Env) {
		run.Path = runner.SecurePath
	}
	h := lifecycle.New(cfg, reg, run, &lifecycle.Renderer{Cfg: cfg, Templates: tmpl})
	if testHooks {
		if dir := f.env(lifecycle.EnvTestHomes); dir != "" {
			h.Accounts = lifecycle.HomeDirs{Dir: dir}
		}
	}
	return h, nil
}

// env looks up an environment variable through IO.Env (os.Getenv when
// unset).
func (f *Factory) env(key string) string {
	if f.IO.Env == nil {
		return os.Getenv(key)
	}
	return f.IO.Env(key)
}

// Caller is the person this devhost command acts for (see
// lifecycle.ResolveCaller).
func (f *Factory) Caller() (lifecycle.Caller, error) {
	env := f.IO.Env
	if env == nil {
		env = os.Getenv
	}
	return lifecycle.ResolveCaller(lifecycle.Process{
		EUID: os.Geteuid(),
		Env:  env,
		Current: func() (string, error) {
			u, err := user.Current()
			if err != nil {
				return "", err
			}
			return u.Username, nil
		},
		TestIdentity: testHooks,
	}, lifecycle.OSUsers{})
}

// checkTrustedConfig: when root runs devhost for a sudo user, the host
// configuration must be root's alone (owned by root, not writable by group
// or others), or that user could name any program as the rebuild command.
func checkTrustedConfig(path string, env func(string) string) error {
	if !forSudoUser(env) {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("host configuration: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
		return &InputError{Err: fmt.Errorf("host configuration %s is not owned by root or is writable by others; through sudo devhost only uses a configuration only root can change", path)}
	}
	return nil
}

// loadTemplates loads the templates with the host configuration's
// template_dir overrides. When root runs devhost for a sudo user, that
// directory must be root's alone, like the configuration
// (hostconfig.CheckRootOnly: it, every parent, every link on the way and
// every file in it): its templates write the Nix the host evaluates as root.
func loadTemplates(cfg *hostconfig.Config, env func(string) string) (*templates.Set, error) {
	if cfg.TemplateDir != "" && forSudoUser(env) {
		if err := hostconfig.CheckRootOnly(cfg.TemplateDir); err != nil {
			return nil, &InputError{Err: fmt.Errorf("template_dir: %w; through sudo devhost only uses templates only root can change", err)}
		}
	}
	return templates.Load(cfg.TemplateDir)
}

// journalLogger logs through syslog (/dev/log, which journald reads), so a
// record of every external command lands in the journal however devhost was
// started; nil (no logging) where there is no syslog socket.
func journalLogger() *slog.Logger {
	w, err := syslog.New(syslog.LOG_INFO|syslog.LOG_DAEMON, "devhost")
	if err != nil {
		return nil
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // the journal stamps records itself
			}
			return a
		},
	}))
}

// hostAndCaller resolves what every devhost-side command needs: the
// lifecycle host and the caller it acts for.
func hostAndCaller(host func() (*lifecycle.Host, error), caller func() (lifecycle.Caller, error)) (*lifecycle.Host, lifecycle.Caller, error) {
	h, err := host()
	if err != nil {
		return nil, lifecycle.Caller{}, err
	}
	c, err := caller()
	if err != nil {
		return nil, lifecycle.Caller{}, err
	}
	return h, c, nil
}

// orBackground is ctx, or context.Background() when a test runs a command's
// run function without cobra (which always sets a context).
func orBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}

// forSudoUser reports whether root runs devhost on behalf of a sudo user:
// then nothing of that user's environment may choose what runs as root.
func forSudoUser(env func(string) string) bool {
	return os.Geteuid() == 0 && env != nil && env("SUDO_USER") != "" && env("SUDO_USER") != "root"
}
