package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/registry"
)

// listOptions are the inputs of `devhost list`.
type listOptions struct {
	IO       *IOStreams
	Config   func() (*hostconfig.Config, error)
	Registry func() (*registry.Registry, error)
	JSON     bool
	Now      func() time.Time
}

func newCmdList(f *Factory) *cobra.Command {
	opts := &listOptions{IO: f.IO, Config: f.HostConfig, Registry: f.Registry, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the containers in the registry",
		Long: `List every registered container with its owner, environment, state, age,
last deployment, keep flag, the users it is shared with and public URLs.

On a terminal the output is an aligned table; piped, it is one tab-separated
line per container with a header line (stable columns: NAME OWNER ENVIRONMENT
STATE AGE DEPLOYED KEEP URLS, URLs separated by spaces). --json prints an
array of objects for scripts. An invalid registry entry is reported with its
file and position, and the command exits with status 1.`,
		Example: `  devhost list
  devhost list --json | jq -r '.[] | select(.state == "stopped") | .name'
  devhost --config examples/devhost.hcl list`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return listRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON array")
	return cmd
}

// listEntry is one container in `devhost list --json`; the keys are stable.
type listEntry struct {
	Name        string            `json:"name"`
	Owner       string            `json:"owner"`
	Environment string            `json:"environment"`
	Root        string            `json:"root"`
	State       string            `json:"state"`
	Address     string            `json:"address"`
	Address6    string            `json:"address6,omitempty"`
	Channel     string            `json:"channel"`
	Aliases     []string          `json:"aliases"`
	Created     string            `json:"created"`
	Deployed    *string           `json:"deployed"` // null: never deployed
	AgeSeconds  int64             `json:"age_seconds"`
	Keep        bool              `json:"keep"`
	SharedWith  []string          `json:"shared_with"`
	URLs        []string          `json:"urls"`
	Labels      map[string]string `json:"labels"`
	LastError   string            `json:"last_error"`
}

// containerURLs are the public URLs of c: its own name, and each alias when
// the alias proxy is on.
func containerURLs(cfg *hostconfig.Config, c *registry.Container) []string {
	urls := []string{"https://" + c.Name + "." + cfg.PublicAddress + "/"}
	if cfg.AliasProxy {
		for _, a := range c.Aliases {
			urls = append(urls, "https://"+a+"."+c.Name+"."+cfg.PublicAddress+"/")
		}
	}
	return urls
}

func listRun(opts *listOptions) error {
	cfg, all, err := loadRegistry(opts.Config, opts.Registry)
	if err != nil {
		return err
	}
	now := opts.Now()
	if opts.JSON {
		entries := make([]listEntry, 0, len(all))
		for _, c := range all {
			e := listEntry{
				Name: c.Name, Owner: c.Owner, Environment: c.Environment, Root: c.Root,
				State: string(c.State), Address: c.Address.String(), Channel: c.Channel,
				Aliases: append([]string{}, c.Aliases...), Created: c.Created.UTC().Format(time.RFC3339),
				AgeSeconds: int64(now.Sub(c.Created) / time.Second), Keep: c.Keep,
				SharedWith: append([]string{}, c.SharedWith...),
				URLs:       containerURLs(cfg, c), Labels: map[string]string{}, LastError: c.LastError,
			}
			if c.Address6.IsValid() {
				e.Address6 = c.Address6.String()
			}
			if !c.Deployed.IsZero() {
				d := c.Deployed.UTC().Format(time.RFC3339)
				e.Deployed = &d
			}
			for k, v := range c.Labels {
				e.Labels[k] = v
			}
			entries = append(entries, e)
		}
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(entries); err != nil {
			return fmt.Errorf("list: %w", err)
		}
		return nil
	}

	w := opts.IO.Out
	var tw *tabwriter.Writer
	if isTerminal(opts.IO.Out) {
		tw = tabwriter.NewWriter(opts.IO.Out, 0, 8, 2, ' ', 0)
		w = tw
	}
	fmt.Fprintln(w, "NAME\tOWNER\tENVIRONMENT\tSTATE\tAGE\tDEPLOYED\tKEEP\tSHARED\tURLS")
	for _, c := range all {
		deployed := "never"
		if !c.Deployed.IsZero() {
			deployed = ago(now.Sub(c.Deployed))
		}
		keep := "-"
		if c.Keep {
			keep = "keep"
		}
		shared := "-"
		if len(c.SharedWith) > 0 {
			shared = strings.Join(c.SharedWith, ",")
		}
		env := c.Environment
		if env == "" {
			env = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Owner, env, c.State,
			span(now.Sub(c.Created)), deployed, keep, shared, strings.Join(containerURLs(cfg, c), " "))
	}
	if tw != nil {
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("list: %w", err)
		}
	}
	return nil
}

// span is a duration the way people say it: "45s", "12m", "5h", "3d".
func span(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	default:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
}

// ago is span for a moment in the past: "2h ago", "just now".
func ago(d time.Duration) string {
	if d < time.Minute {
		return "just now"
	}
	return span(d) + " ago"
}

// isTerminal reports whether w is a terminal, where a table is aligned for
// people; anything else gets stable tab-separated lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
