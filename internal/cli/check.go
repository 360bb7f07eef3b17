package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/environment"
)

// checkOptions are the inputs of `devhost check`.
type checkOptions struct {
	IO      *IOStreams
	Context context.Context
	Env     string
	// Root is the deployment root as the user gave it ("" = working dir).
	Root string
	JSON bool
	// Load tunes environment.Load (tests point the Nix and bash checks at
	// commands of their choice).
	Load environment.Options
}

func newCmdCheck(f *Factory) *cobra.Command {
	opts := &checkOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "check ENV",
		Short: "Check a batou environment and show what `devhost up` would create",
		Long: `Check environments/ENV/ of a batou deployment (the working directory, or
--root) the way batou and devhost read it: environment.cfg, hostmap.json,
provision.nix (with nix-instantiate --parse, when Nix is installed) and
provision.sh (with bash -n).

Every problem is reported at once as file:line:column with a hint, and the
command exits with status 1. Otherwise it prints each container devhost up
would provision (its real name, devhost, channel, aliases and public URLs),
the hosts it would not provision, and warnings on stderr. check never writes
anything (batou itself rewrites hostmap.json when it loads an environment;
check only reads it).

--json prints the same as data, with stable keys: environment, root, valid,
containers (host, name — null until a dynamic name is assigned —,
name_source, devhost, provisioner, method, channel, service_user, ignored,
components, aliases, urls), not_provisioned (host, reason, ignored,
components), provision (nix, nix_copied, sh) and diagnostics (severity,
summary, detail, file, line, column). With errors it still prints the
document (valid false) and exits with status 1.`,
		Example: `  devhost check dev
  devhost check --root examples/shop dev
  devhost check --json review | jq -r '.containers[].urls[]'`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Env = args[0]
			opts.Context = cmd.Context()
			return checkRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Root, "root", "", "the batou deployment root, which holds environments/ (default: the working directory)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	return cmd
}

// checkResult is `devhost check --json`; the keys are stable.
type checkResult struct {
	Environment    string           `json:"environment"`
	Root           string           `json:"root"`
	Valid          bool             `json:"valid"`
	Containers     []checkContainer `json:"containers"`
	NotProvisioned []checkHost      `json:"not_provisioned"`
	Provision      checkProvision   `json:"provision"`
	Diagnostics    []checkDiag      `json:"diagnostics"`
}

type checkContainer struct {
	// Host is the name in the environment; Name the container's real name,
	// null while a dynamic name is not assigned.
	Host string  `json:"host"`
	Name *string `json:"name"`
	// NameSource: "host" (static), "hostmap" (hostmap.json) or
	// "assigned on first up".
	NameSource  string   `json:"name_source"`
	Devhost     string   `json:"devhost"`
	Provisioner string   `json:"provisioner"`
	Method      string   `json:"method"`
	Channel     string   `json:"channel"`
	ServiceUser string   `json:"service_user"`
	Ignored     bool     `json:"ignored"`
	Components  []string `json:"components"`
	Aliases     []string `json:"aliases"`
	// URLs are https://<name>.<devhost>/ and https://<alias>.<name>.<devhost>/;
	// "<name>" stands for a name not assigned yet.
	URLs []string `json:"urls"`
}

type checkHost struct {
	Host       string   `json:"host"`
	Reason     string   `json:"reason"`
	Ignored    bool     `json:"ignored"`
	Components []string `json:"components"`
}

type checkProvision struct {
	Nix       *string `json:"nix"` // file name, null when absent
	NixCopied bool    `json:"nix_copied"`
	Sh        *string `json:"sh"`
}

type checkDiag struct {
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
}

const unassigned = "assigned on first up"

func checkRun(opts *checkOptions) error {
	ctx := orBackground(opts.Context)
	root, display := opts.IO.deploymentRoot(opts.Root)
	lo := opts.Load
	lo.DisplayRoot = display
	env, diags := environment.Load(ctx, root, opts.Env, lo)
	var files map[string][]byte
	if env != nil {
		files = env.Files()
	}
	res := checkData(opts.Env, display, env, diags)
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("check: %w", err)
		}
	}
	if err := diag.NewError(diags, files); err != nil {
		return err
	}
	if len(diags) > 0 {
		if err := diag.Write(opts.IO.ErrOut, diags, files, opts.IO.ColorErr); err != nil {
			return fmt.Errorf("check: %w", err)
		}
	}
	if opts.JSON {
		return nil
	}
	return writeCheck(opts.IO.Out, res)
}

func checkData(name, root string, env *environment.Environment, diags hcl.Diagnostics) checkResult {
	res := checkResult{Environment: name, Root: root, Valid: !diags.HasErrors(),
		Containers: []checkContainer{}, NotProvisioned: []checkHost{}, Diagnostics: []checkDiag{}}
	for _, d := range diags {
		cd := checkDiag{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			cd.Severity = "warning"
		}
		if d.Subject != nil {
			cd.File, cd.Line, cd.Column = d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column
		}
		res.Diagnostics = append(res.Diagnostics, cd)
	}
	if env == nil {
		return res
	}
	for _, h := range env.Hosts {
		comps := make([]string, len(h.Components))
		for i, c := range h.Components {
			comps[i] = c.String()
		}
		if !h.Provisioned() {
			res.NotProvisioned = append(res.NotProvisioned, checkHost{Host: h.Name, Reason: h.NotProvisioned, Ignored: h.Ignore, Components: comps})
			continue
		}
		p := h.Provisioner
		c := checkContainer{Host: h.Name, Devhost: p.Host.Value, Provisioner: p.Name, Method: p.Method.Value,
			Channel: p.Channel.Value, ServiceUser: h.ServiceUser.Value, Ignored: h.Ignore,
			Components: comps, Aliases: []string{}}
		name := "<name>"
		switch {
		case !h.Assigned():
			c.NameSource = unassigned
		case h.Dynamic:
			c.NameSource = "hostmap"
		default:
			c.NameSource = "host"
		}
		if h.Assigned() {
			n := h.RealName
			c.Name, name = &n, n
		}
		c.URLs = []string{"https://" + name + "." + p.Host.Value + "/"}
		for _, a := range h.Aliases {
			c.Aliases = append(c.Aliases, a.Name)
			c.URLs = append(c.URLs, "https://"+a.Name+"."+name+"."+p.Host.Value+"/")
		}
		res.Containers = append(res.Containers, c)
	}
	if env.Provision.NixExists {
		n := env.Provision.NixFile
		res.Provision.Nix = &n
		res.Provision.NixCopied = env.Provision.NixCopied
	}
	if env.Provision.ShExists {
		s := env.Provision.ShFile
		res.Provision.Sh = &s
	}
	return res
}

// writeCheck prints the result for people. Values from the environment's
// files go through diag.Visible: a host or component name cannot carry
// terminal escape sequences to the screen.
func writeCheck(w io.Writer, res checkResult) error {
	fmt.Fprintf(w, "Environment %s in %s: devhost up %s would provision %d container(s).\n",
		res.Environment, res.Root, res.Environment, len(res.Containers))
	for _, c := range res.Containers {
		name := "(" + unassigned + ")"
		switch {
		case c.Name != nil && c.NameSource == "hostmap":
			name = *c.Name + " (from hostmap.json)"
		case c.Name != nil:
			name = *c.Name
		}
		fmt.Fprintf(w, "\n%s -> container %s\n", diag.Visible(c.Host), diag.Visible(name))
		field := func(k, v string) { fmt.Fprintf(w, "  %-13s %s\n", k, diag.Visible(v)) }
		field("devhost", c.Devhost)
		field("provisioner", c.Provisioner+" ("+c.Method+")")
		field("channel", c.Channel)
		if c.ServiceUser != "" {
			field("service user", c.ServiceUser)
		}
		if c.Ignored {
			field("ignored", "batou provisions it but does not deploy to it")
		}
		field("components", orNone(strings.Join(c.Components, ", ")))
		field("aliases", orNone(strings.Join(c.Aliases, " ")))
		for i, u := range c.URLs {
			k := ""
			if i == 0 {
				k = "urls"
			}
			field(k, u)
		}
	}
	if len(res.NotProvisioned) > 0 {
		fmt.Fprintf(w, "\nNot provisioned:\n")
		for _, h := range res.NotProvisioned {
			fmt.Fprintf(w, "  %s (%s)\n", diag.Visible(h.Host), diag.Visible(h.Reason))
		}
	}
	if len(res.Containers) > 0 {
		fmt.Fprintf(w, "\nProvisioning code:\n")
		switch {
		case res.Provision.Nix == nil:
			fmt.Fprintf(w, "  provision.nix  none\n")
		case res.Provision.NixCopied:
			fmt.Fprintf(w, "  provision.nix  copied to %s in each container\n", environment.ProvisionNixTarget)
		default:
			fmt.Fprintf(w, "  provision.nix  handled by provision.sh\n")
		}
		if res.Provision.Sh == nil {
			fmt.Fprintf(w, "  provision.sh   none\n")
		} else {
			fmt.Fprintf(w, "  provision.sh   run after each container is ensured\n")
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
