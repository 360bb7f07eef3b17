package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/names"
	"github.com/flyingcircusio/devhost/internal/provision"
)

// connectOptions are the inputs of `devhost connect`.
type connectOptions struct {
	IO      *IOStreams
	Context context.Context
	Name    string
	Devhost string
	SSH     string // --ssh, else $DEVHOST_SSH, else "ssh"
	JSON    bool
}

func newCmdConnect(f *Factory) *cobra.Command {
	opts := &connectOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "connect NAME [--devhost HOST]",
		Short: "Write an ssh_config for a container shared with you (on your laptop)",
		Long: `Ask the devhost HOST for container NAME's host key (` + "`sudo devhost status --json NAME`" + `
over ssh, with the current directory's ssh_config when there is one, as
devhost up does) and write ssh_config_NAME and ssh_known_hosts_NAME in the
current directory: ProxyJump through the devhost, user developer, your own ssh keys
(the ones you log into the devhost with), the container's host key pinned
(StrictHostKeyChecking yes). Then ` + "`ssh -F ssh_config_NAME NAME`" + ` logs you in,
provided the owner ran ` + "`devhost share NAME YOU`" + `.

Without --devhost the devhost of an existing ssh_config_NAME is used, so
running connect again refreshes a changed host key.`,
		Example: `  devhost connect shop --devhost dev.example.com
  ssh -F ssh_config_shop shop`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			opts.Name = args[0]
			return connectRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Devhost, "devhost", "", "the devhost the container runs on, as you ssh to it")
	cmd.Flags().StringVar(&opts.SSH, "ssh", "", "ssh program (default $DEVHOST_SSH, else ssh)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, `print {"name", "devhost", "ssh_config", "known_hosts", "host_key"}`)
	return cmd
}

func connectRun(opts *connectOptions) error {
	ctx := orBackground(opts.Context)
	if err := names.Container(opts.Name); err != nil {
		return &InputError{Err: fmt.Errorf("connect: %w", err)}
	}
	getenv := opts.IO.Env
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	dir := opts.IO.Dir
	if dir == "" {
		dir = "."
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	host := opts.Devhost
	if host == "" {
		if host, err = provision.ConnectedDevhost(dir, opts.Name); err != nil {
			return err
		}
	}
	if host == "" {
		return inputErrorf("connect %s: which devhost? pass --devhost HOST (afterwards it is read from ssh_config_%s)", opts.Name, opts.Name)
	}
	if err := names.Domain(host); err != nil {
		return &InputError{Err: fmt.Errorf("connect: --devhost: %w", err)}
	}
	// The devhost is reached the way ssh_config_NAME reaches it (it
	// includes the directory's ssh_config).
	sshProg, sshOpts := devhostSSH(opts.SSH, getenv, dir)
	d := &provision.SSHDevhost{SSH: sshProg, Options: sshOpts, Host: host}
	c, err := provision.Connect(ctx, d, opts.Name, dir, getenv("HOME"))
	if err != nil {
		return err
	}
	if opts.JSON {
		return json.NewEncoder(opts.IO.Out).Encode(c)
	}
	fmt.Fprintf(opts.IO.Out, "wrote %s and %s\n  ssh -F %s %s\n", c.SSHConfig, c.KnownHosts, filepath.Base(c.SSHConfig), c.Name)
	return nil
}
