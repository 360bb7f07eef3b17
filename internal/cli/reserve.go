package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/environment"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/lifecycle"
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
}

func newCmdReserve(f *Factory) *cobra.Command {
	opts := &reserveOptions{IO: f.IO, Config: f.HostConfig, Registry: f.Registry, Now: time.Now,
		Caller: func() (lifecycle.Caller, error) {
			return lifecycle.ResolveCaller(lifecycle.Process{EUID: os.Geteuid(), Env: f.IO.Env, Current: currentUserName}, lifecycle.OSUsers{})
		}}
	cmd := &cobra.Command{
		Use:   "reserve",
		Short: "Reserve a new container name (what devhost up asks for dynamic host names)",
		Long: `Pick a container name that is free on this devhost, 11 lowercase hex digits
and not all digits (batou's dynamic names), and reserve it for the caller.

The name is chosen and recorded under the registry lock, so two callers,
even on different laptops at the same moment, never get the same name. The
reservation is a file <state>/reservations/<name>.json; the registry entry
is created by the first "devhost ensure NAME".`,
		Example: `  sudo devhost reserve
  sudo devhost reserve --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			return reserveRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, `print {"name": …, "owner": …, "created": …}`)
	return cmd
}

func currentUserName() (string, error) {
	u, err := user.Current()
	if err != nil {
		return "", err
	}
	return u.Username, nil
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
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
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
	name, err := environment.SuggestName(nil, func(n string) bool {
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
