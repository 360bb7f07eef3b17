package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/lifecycle"
)

// protectOptions are the inputs of `devhost protect`.
type protectOptions struct {
	IO        *IOStreams
	Context   context.Context
	Lifecycle func() (*lifecycle.Host, error)
	Caller    func() (lifecycle.Caller, error)
	Name      string
	User      string
	Off       bool
	JSON      bool
}

func newCmdProtect(f *Factory) *cobra.Command {
	opts := &protectOptions{IO: f.IO, Lifecycle: f.Lifecycle, Caller: f.Caller}
	cmd := &cobra.Command{
		Use:   "protect NAME [--user U] [--off]",
		Short: "Ask visitors of a container's URLs for a password (or, with --off, no longer)",
		Long: `Put HTTP basic auth on every URL of container NAME, for user U (default
` + lifecycle.DefaultProtectUser + `) and a new random password, which is printed once here and
stored nowhere but as a hash (SHA-512 crypt, in a file only root and nginx
read). Give user and password to the customer who should see the container.
Protecting a protected container replaces its password (and user) at once.
The status page marks protected containers; Let's Encrypt's challenges still
reach nginx. --off removes the protection. Only the owner or a member of the
admin group may change it.`,
		Example: `  sudo devhost protect shop
  sudo devhost protect shop --user acme-corp
  sudo devhost protect shop --off`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			opts.Name = args[0]
			if opts.Off && cmd.Flags().Changed("user") {
				return inputErrorf("--off and --user exclude each other: --off removes the protection of every user")
			}
			return protectRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.User, "user", lifecycle.DefaultProtectUser, "the user name visitors give")
	cmd.Flags().BoolVar(&opts.Off, "off", false, "remove the protection")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, `print {"name": …, "protected": …, "user": …, "password": …} (the password only when set now)`)
	return cmd
}

// protectOutput is what --json prints.
type protectOutput struct {
	Name      string `json:"name"`
	Protected bool   `json:"protected"`
	User      string `json:"user,omitempty"`
	Password  string `json:"password,omitempty"`
}

func protectRun(opts *protectOptions) error {
	ctx := orBackground(opts.Context)
	h, caller, err := hostAndCaller(opts.Lifecycle, opts.Caller)
	if err != nil {
		return err
	}
	var res *lifecycle.ProtectResult
	if opts.Off {
		res, err = h.Unprotect(ctx, opts.Name, caller)
	} else {
		res, err = h.Protect(ctx, opts.Name, opts.User, caller)
	}
	// The password is shown even beside an error when it is in force
	// (see Protect): it is the only copy.
	if res != nil && (err == nil || res.Password != "") {
		if perr := printProtect(opts, res); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		return lifecycleError(err)
	}
	return nil
}

func printProtect(opts *protectOptions, res *lifecycle.ProtectResult) error {
	c := res.Container
	if opts.JSON {
		return json.NewEncoder(opts.IO.Out).Encode(protectOutput{Name: c.Name, Protected: c.ProtectUser != "", User: c.ProtectUser, Password: res.Password})
	}
	if c.ProtectUser == "" {
		_, err := fmt.Fprintf(opts.IO.Out, "container %s is no longer protected: its URLs are open to everybody\n", c.Name)
		return err
	}
	_, err := fmt.Fprintf(opts.IO.Out, "container %s asks for a password now\nuser:     %s\npassword: %s\nThe password is shown only this once; `devhost protect %s` makes a new one.\n",
		c.Name, c.ProtectUser, res.Password, c.Name)
	return err
}
