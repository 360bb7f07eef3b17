package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/environment"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/lifecycle"
	"github.com/flyingcircusio/devhost/internal/names"
	"github.com/flyingcircusio/devhost/internal/provision"
	"github.com/flyingcircusio/devhost/internal/registry"
)

// reserveOptions are the inputs of `devhost reserve`.
type reserveOptions struct {
	IO       *IOStreams
	Context  context.Context
	Config   func() (*hostconfig.Config, error)
	Registry func() (*registry.Registry, error)
	Caller   func() (lifecycle.Caller, error)
	JSON     bool
	Now      func() time.Time
	// Random feeds the name suggestion (nil: crypto/rand); tests give
	// every caller the same sequence to prove the lock prevents sharing.
	Random io.Reader
	// Devhost, when set, reserves on that devhost over ssh (the laptop
	// side, for batou's suggest_name); SSH is the ssh program.
	Devhost string
	SSH     string
}

func newCmdReserve(f *Factory) *cobra.Command {
	opts := &reserveOptions{IO: f.IO, Config: f.HostConfig, Registry: f.Registry, Now: time.Now, Caller: f.Caller}
	cmd := &cobra.Command{
		Use:   "reserve",
		Short: "Reserve a new container name (what devhost up asks for dynamic host names)",
		Long: `Pick a container name that is free on this devhost, 11 lowercase hex digits
and not all digits (batou's dynamic names), and reserve it for the caller.

The name is chosen and recorded under the registry lock, so two callers,
even on different laptops at the same moment, never get the same name. The
reservation is a file <state>/reservations/<name>.json; the registry entry
is created by the first "devhost ensure NAME".

With --devhost HOST, devhost runs on your laptop and asks HOST for the name
over ssh ("sudo devhost reserve --json" there), using ./ssh_config when the
deployment has one, as batou does: this is how batou's devhost provisioner
suggests names.`,
		Example: `  sudo devhost reserve
  sudo devhost reserve --json
  devhost reserve --devhost dev.example.com --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			return reserveRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, `print {"name": …, "owner": …, "created": …}`)
	cmd.Flags().StringVar(&opts.Devhost, "devhost", "", "reserve on this devhost over ssh (run on the laptop)")
	cmd.Flags().StringVar(&opts.SSH, "ssh", "", "ssh program for --devhost (default $DEVHOST_SSH, else ssh)")
	return cmd
}

// reservation is <state>/reservations/<name>.json.
type reservation struct {
	Name    string `json:"name"`
	Owner   string `json:"owner"`
	Created string `json:"created"`
}

// reservationPath is where the reservation of name is kept.
func reservationPath(stateDir, name string) string {
	return filepath.Join(stateDir, "reservations", name+".json")
}

func reserveRun(opts *reserveOptions) error {
	ctx := orBackground(opts.Context)
	if opts.Devhost != "" {
		return reserveRemote(ctx, opts)
	}
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	caller, err := opts.Caller()
	if err != nil {
		return fmt.Errorf("reserve: %w", err)
	}
	if err := caller.CheckMember(cfg.Access, "reserve container names"); err != nil {
		return &InputError{Err: err}
	}
	reg, err := opts.Registry()
	if err != nil {
		return err
	}
	unlock, err := reg.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	exists := func(p string) bool {
		_, err := os.Stat(p)
		return err == nil || !errors.Is(err, fs.ErrNotExist)
	}
	name, err := environment.SuggestName(opts.Random, func(n string) bool {
		return exists(reg.Path(n)) || exists(reservationPath(cfg.StateDir, n))
	})
	if err != nil {
		return fmt.Errorf("reserve: %w", err)
	}
	r := reservation{Name: name, Owner: caller.User, Created: opts.Now().UTC().Format(time.RFC3339)}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("reserve: %w", err)
	}
	if err := writeReservation(reservationPath(cfg.StateDir, name), append(data, '\n')); err != nil {
		return fmt.Errorf("reserve: %w", err)
	}
	if opts.JSON {
		return json.NewEncoder(opts.IO.Out).Encode(r)
	}
	fmt.Fprintln(opts.IO.Out, name)
	return nil
}

// writeReservation creates path atomically (temp file, fsync, rename),
// under the registry lock the caller holds.
func writeReservation(path string, data []byte) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".reservation-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// reserveRemote asks a devhost for a name over ssh.
func reserveRemote(ctx context.Context, opts *reserveOptions) error {
	sshProg, sshOpts := devhostSSH(opts.SSH, opts.IO.Env, opts.IO.Dir)
	d := &provision.SSHDevhost{SSH: sshProg, Options: sshOpts, Host: opts.Devhost, Stderr: opts.IO.ErrOut}
	name, err := d.Reserve(ctx)
	if err != nil {
		var ne *names.Error
		if errors.As(err, &ne) {
			return &InputError{Err: err}
		}
		return err
	}
	if opts.JSON {
		return json.NewEncoder(opts.IO.Out).Encode(map[string]string{"name": name})
	}
	fmt.Fprintln(opts.IO.Out, name)
	return nil
}

// devhostSSH is how the laptop side reaches a devhost, as batou does: the
// ssh program (flag, else $DEVHOST_SSH, else ssh) and, when dir holds a
// deployment's ssh_config, "-F" with it (else the user's own
// configuration). ssh_config_ENV and ssh_config_NAME include that file,
// so their ProxyJump reaches the devhost the same way.
func devhostSSH(flag string, getenv func(string) string, dir string) (prog string, options []string) {
	prog = flag
	if prog == "" && getenv != nil {
		prog = getenv("DEVHOST_SSH")
	}
	if prog == "" {
		prog = "ssh"
	}
	if p := filepath.Join(dir, "ssh_config"); fileExists(p) {
		options = []string{"-F", p}
	}
	return prog, options
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
