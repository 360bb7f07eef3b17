package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/lifecycle"
	"github.com/flyingcircusio/devhost/internal/limits"
)

// statusOptions are the inputs of `devhost status`.
type statusOptions struct {
	IO        *IOStreams
	Context   context.Context
	Lifecycle func() (*lifecycle.Host, error)
	Name      string
	JSON      bool
}

func newCmdStatus(f *Factory) *cobra.Command {
	opts := &statusOptions{IO: f.IO, Lifecycle: f.Lifecycle}
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "Show a container's state, addresses, URLs, profile and last deployment",
		Long: `With NAME: the container's registry state and its unit's state, its
address and the host's, its public URLs, its profile generation and system,
its creation and last deployment, its keep flag, the users it is shared
with and its last error, whether
a registry change still awaits a host rebuild, and whether an interrupted
operation will be undone by the next command.

Without NAME: the devhost's lifecycle state: wanted and applied generations,
whether a rebuild runs or was interrupted, whether the generated set on
disk is the applied one, interrupted operations, restarts a rebuild still
owes and the last failed rebuild.

status changes nothing.`,
		Example: `  devhost status shop
  devhost status shop --json | jq .urls
  devhost status`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return exactArgs(1)(cmd, args)
			}
			return nil
		},
		ValidArgsFunction: completeContainers(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			if len(args) == 1 {
				opts.Name = args[0]
			}
			return statusRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON object")
	return cmd
}

func statusRun(opts *statusOptions) error {
	ctx := orBackground(opts.Context)
	h, err := opts.Lifecycle()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(opts.IO.Out)
	enc.SetIndent("", "  ")
	if opts.Name == "" {
		s, err := h.HostStatus()
		if err != nil {
			return err
		}
		if opts.JSON {
			return enc.Encode(s)
		}
		printHostStatus(opts.IO.Out, s)
		return nil
	}
	s, err := h.Status(ctx, opts.Name)
	if err != nil {
		return lifecycleError(err)
	}
	if opts.JSON {
		return enc.Encode(s)
	}
	printStatus(opts.IO.Out, s)
	return nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func printStatus(w io.Writer, s *lifecycle.Status) {
	row := func(k, v string) { fmt.Fprintf(w, "%-13s %s\n", k+":", v) }
	row("container", s.Name)
	row("owner", s.Owner)
	if s.Environment != "" {
		row("environment", s.Environment)
	}
	row("state", fmt.Sprintf("%s (unit %s)", s.State, s.Active))
	row("address", fmt.Sprintf("%s (host %s)", s.Address, s.HostAddress))
	if s.Address6 != "" {
		row("address6", fmt.Sprintf("%s (host %s)", s.Address6, s.HostAddress6))
	}
	row("channel", s.Channel)
	if len(s.Aliases) > 0 {
		row("aliases", strings.Join(s.Aliases, " "))
	}
	for i, u := range s.URLs {
		if i == 0 {
			row("urls", u)
		} else {
			fmt.Fprintf(w, "%-13s %s\n", "", u)
		}
	}
	if s.Generation > 0 {
		row("profile", fmt.Sprintf("%s (generation %d, %s)", s.Profile, s.Generation, s.System))
	} else {
		row("profile", "none")
	}
	row("created", fmtTime(s.Created))
	row("deployed", fmtTime(s.Deployed))
	row("keep", fmt.Sprint(s.Keep))
	if len(s.SharedWith) > 0 {
		row("shared with", strings.Join(s.SharedWith, " "))
	}
	if s.ExpiresAt != nil {
		row("expires", fmtTime(*s.ExpiresAt)+" (destroyed by the cleanup after that)")
	}
	row("limits", fmtLimits(s.Limits))
	if s.Protected {
		row("protected", "HTTP basic auth, user "+s.ProtectUser)
	}
	if s.Pending {
		row("pending", "a registry change awaits a host rebuild")
	}
	if s.Interrupted != "" {
		row("interrupted", "an interrupted "+s.Interrupted+" will be undone by the next devhost command")
	}
	if c := s.Cert; c != nil {
		v := c.State
		if !c.ValidUntil.IsZero() {
			v += " until " + fmtTime(c.ValidUntil)
		}
		if c.Reason != "" {
			v += ": " + visible(c.Reason)
		}
		row("certificate", c.Name+" "+v)
	}
	if s.LastError != "" {
		lines := strings.Split(visible(s.LastError), "\n")
		row("last error", lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "%-13s %s\n", "", l)
		}
	}
}

// fmtLimits is one line: "memory 2G, cpu weight 100, …" or "none".
func fmtLimits(l limits.Limits) string {
	var parts []string
	if l.MemoryMax != "" {
		parts = append(parts, "memory "+l.MemoryMax)
	}
	if l.CPUWeight != 0 {
		parts = append(parts, fmt.Sprintf("cpu weight %d", l.CPUWeight))
	}
	if l.CPUQuota != "" {
		parts = append(parts, "cpu quota "+l.CPUQuota)
	}
	if l.TasksMax != 0 {
		parts = append(parts, fmt.Sprintf("tasks %d", l.TasksMax))
	}
	if parts == nil {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// visible makes every control character, invisible format character
// (bidirectional overrides…) and invalid UTF-8 byte of s visible in Go's
// escape notation (\x1b, \r, \x00, \u202e), and a backslash \\, so
// that text from a failed command cannot move the cursor, rewrite the
// terminal's title or hide part of itself. Newlines stay, as line breaks.
func visible(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteByte('\n')
		case r == '\\':
			b.WriteString(`\\`)
		case r == ' ' || unicode.IsPrint(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRune(r) // '\x1b', '\r', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

func printHostStatus(w io.Writer, s *lifecycle.HostStatus) {
	row := func(k, v string) { fmt.Fprintf(w, "%-20s %s\n", k+":", v) }
	row("containers", fmt.Sprint(s.Containers))
	row("generation", fmt.Sprintf("wanted %d, applied %d (%s)", s.WantedGen, s.AppliedGen, fmtTime(s.AppliedAt)))
	row("pending", fmt.Sprint(s.Pending))
	row("rebuild running", fmt.Sprint(s.RebuildRunning))
	if s.RebuildInterrupted {
		row("rebuild interrupted", "yes: the next rebuild runs in any case")
	}
	row("set is applied one", fmt.Sprint(s.SetMatchesApplied))
	if len(s.Interrupted) > 0 {
		row("interrupted ops", strings.Join(s.Interrupted, " "))
	}
	if len(s.RestartsPending) > 0 {
		row("restarts pending", strings.Join(s.RestartsPending, " ")+" (the next devhost apply restarts them)")
	}
	if s.Challenge != "" {
		row("acme", fmt.Sprintf("%s, %d certificates issued in the last 7 days (Let's Encrypt allows %d)", s.Challenge, s.CertsLastWeek, lifecycle.CertLimit))
	}
	if s.LastFailure != nil {
		row("last failure", fmt.Sprintf("%s (generations %d..%d, log %s)", fmtTime(s.LastFailure.Time), s.LastFailure.From+1, s.LastFailure.To, s.LastFailure.Log))
	}
}
