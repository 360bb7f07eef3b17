package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/registry"
)

// configState is the Factory's part for the host configuration: the
// --config flag and the configuration once loaded.
type configState struct {
	flag   string // value of --config ("" when not given)
	loaded *hostconfig.Config
	err    error
	done   bool
}

// addConfigFlag registers the persistent --config flag on root.
func (f *Factory) addConfigFlag(root *cobra.Command) {
	root.PersistentFlags().StringVar(&f.config.flag, "config", "",
		"host configuration file (default $DEVHOST_CONFIG, else "+hostconfig.DefaultPath+"; through sudo only the latter)")
}

// ConfigPath is the host configuration file devhost uses: --config, else
// $DEVHOST_CONFIG, else /etc/devhost/devhost.hcl; relative paths are
// relative to the working directory.
func (f *Factory) ConfigPath() string {
	p := f.config.flag
	if p == "" && f.IO.Env != nil {
		p = f.IO.Env("DEVHOST_CONFIG")
	}
	if p == "" {
		p = hostconfig.DefaultPath
	}
	return f.abs(p)
}

// HostConfig loads the host configuration once. A missing file or one with
// mistakes is the user's to fix (exit 1: *InputError or *diag.Error).
func (f *Factory) HostConfig() (*hostconfig.Config, error) {
	if f.config.done {
		return f.config.loaded, f.config.err
	}
	path := f.ConfigPath()
	if err := checkSudoConfigPath(os.Geteuid(), f.IO.Env, path); err != nil {
		f.config.err, f.config.done = err, true
		return nil, err
	}
	c, err := hostconfig.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		err = &InputError{Err: fmt.Errorf("host configuration %s does not exist; point --config or DEVHOST_CONFIG at the devhost's configuration", path)}
	}
	f.config.loaded, f.config.err, f.config.done = c, err, true
	return c, err
}

// Registry opens the registry in the host configuration's state directory.
func (f *Factory) Registry() (*registry.Registry, error) {
	c, err := f.HostConfig()
	if err != nil {
		return nil, err
	}
	return registry.Open(c.StateDir), nil
}

// checkSudoConfigPath refuses, when root runs devhost for a sudo user
// (euid 0, SUDO_USER set to someone else), any host configuration but
// hostconfig.DefaultPath. The configuration names the programs devhost runs
// as root (commands.*) and the templates it renders; the sudo rules let the
// users group pass any arguments to `devhost ensure|destroy|keep|share|unshare|status`, so
// honouring --config (or a kept DEVHOST_CONFIG) there would let any member
// run their own program as root — a root-owned file they chose (e.g. one
// they added to /nix/store) passes an ownership check just as well.
func checkSudoConfigPath(euid int, env func(string) string, path string) error {
	if euid != 0 || env == nil {
		return nil
	}
	if u := env("SUDO_USER"); u == "" || u == "root" {
		return nil
	}
	if filepath.Clean(path) == hostconfig.DefaultPath {
		return nil
	}
	return &InputError{Err: fmt.Errorf("host configuration %s: through sudo devhost reads only %s (--config and DEVHOST_CONFIG are for runs without sudo, e.g. previews with render --out)", path, hostconfig.DefaultPath)}
}

// loadRegistry loads the host configuration and every registry entry; an
// invalid entry is a *diag.Error naming its file and line.
func loadRegistry(config func() (*hostconfig.Config, error), open func() (*registry.Registry, error)) (*hostconfig.Config, []*registry.Container, error) {
	cfg, err := config()
	if err != nil {
		return nil, nil, err
	}
	reg, err := open()
	if err != nil {
		return nil, nil, err
	}
	cs, err := reg.LoadAll()
	if err != nil {
		return nil, nil, err
	}
	return cfg, cs, nil
}
