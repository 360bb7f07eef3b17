package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/channel"
	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/flyingcircusio/devhost/internal/names"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/internal/runner"
)

// MaxProvision bounds provision.nix: it is a NixOS module, not a data file.
const MaxProvision = 1 << 20

// Validate checks an ensure request completely before anything is locked
// or changed: names, aliases, channel (and the host's allowed prefixes),
// service user, SSH keys, and provision.nix's syntax (nix-instantiate
// --parse). Problems are returned together as a *diag.Error; provision.nix
// problems carry its position, under the name provName.
func (h *Host) Validate(ctx context.Context, req *EnsureRequest, provName string) error {
	var diags hcl.Diagnostics
	add := func(summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail})
	}
	cand := &registry.Container{
		Name: req.Name, Owner: req.Caller.User, Environment: req.Environment, Root: req.Root,
		ServiceUser: req.ServiceUser, Channel: req.Channel, Aliases: req.Aliases, SSHKeys: req.SSHKeys,
		Address: h.Cfg.Addresses.First(), State: registry.Running, Created: h.now(),
		Limits: req.Limits,
	}
	if req.ExpireAfter < 0 || req.ExpireAfter > limits.MaxExpireAfter {
		add("Invalid expiry", fmt.Sprintf("--expire-after must be between 1m and %s.", hostconfig.FormatDuration(limits.MaxExpireAfter)))
	}
	if err := cand.Validate(); err != nil {
		var de *diag.Error
		if !errors.As(err, &de) {
			return err
		}
		diags = append(diags, de.Diags...)
	}
	if names.Container(req.Name) == nil {
		if names.Reserved(req.Name, h.hostNames()...) {
			add("Reserved container name", fmt.Sprintf("%q is a name of this host or of a host it reaches: the devhost resolves container names to their containers, so this one would redirect the host's own connections. Choose another name.", req.Name))
		}
		bucket := h.Cfg.Nginx.ServerNamesHashBucketSize
		if err := names.ServerName(req.Name+"."+h.Cfg.PublicAddress, bucket); err != nil {
			add("Server name too long for nginx", withHint(err))
		}
		for _, a := range req.Aliases {
			if names.Alias(a) != nil {
				continue
			}
			if err := generator.CheckAlias(h.Cfg, a, req.Name); err != nil {
				add("Invalid alias name", withHint(err))
			} else if err := names.ServerName(generator.AliasFQDN(h.Cfg, a, req.Name), bucket); err != nil {
				add("Server name too long for nginx", withHint(err))
			}
		}
	}
	if _, err := channel.Parse(req.Channel); err == nil { // else cand.Validate said why
		if _, err := h.ResolveChannel(req.Channel); err != nil {
			add("Channel not allowed on this devhost", withHint(err))
		}
	}
	files := map[string][]byte{}
	if req.Provision != nil {
		if len(req.Provision) > MaxProvision {
			add("provision.nix is too large", fmt.Sprintf("%s has %d bytes; at most %d are accepted.", provName, len(req.Provision), MaxProvision))
		} else {
			d, err := h.parseNix(ctx, provName, req.Provision)
			if err != nil {
				return err
			}
			if d != nil {
				diags = append(diags, d)
				files[provName] = req.Provision
			}
		}
	}
	return diag.NewError(diags, files)
}

// hostNames are the names a container may not take besides the built-in
// ones: the host's own name, the first label of its public address, and
// what the host configuration reserves (the module lists the host's
// networking.hostName and networking.hosts names).
func (h *Host) hostNames() []string {
	out := append([]string{h.Cfg.PublicAddress}, h.Cfg.Access.ReservedNames...)
	if hn, err := os.Hostname(); err == nil {
		out = append(out, hn)
	}
	return out
}

// withHint is err's message followed by its hint, when it is a
// *names.Error: what is wrong, then what to do.
func withHint(err error) string {
	var ne *names.Error
	if errors.As(err, &ne) && ne.Hint != "" {
		return err.Error() + "; " + ne.Hint + "."
	}
	return err.Error()
}

// Nix reports the position on a line of its own ("at «stdin»:3:9:").
var (
	nixAt    = regexp.MustCompile(`(?m)^\s*at «stdin»:(\d+):(\d+):?\s*$`)
	nixAtOld = regexp.MustCompile(`, at \(string\):(\d+):(\d+)`)
	nixErr   = regexp.MustCompile(`(?m)^error: (.*)$`)
)

// parseNix runs `nix-instantiate --parse -` on src (fed on stdin, so no
// temporary file is needed) and turns a syntax error into a positioned
// diagnostic. A missing nix-instantiate is an error, not a skipped check:
// the devhost builds with Nix.
func (h *Host) parseNix(ctx context.Context, name string, src []byte) (*hcl.Diagnostic, error) {
	argv := append(append([]string(nil), h.Cfg.Commands.NixInstantiate...), "--parse", "-")
	res, err := h.Run.Run(ctx, runner.Cmd{Argv: argv, Stdin: bytes.NewReader(src)})
	if err == nil {
		return nil, nil
	}
	var re *runner.Error
	if !errors.As(err, &re) || re.ExitCode <= 0 {
		return nil, fmt.Errorf("check %s: %w", name, err)
	}
	text := strings.TrimSpace(string(res.Stderr))
	msg := text
	if m := nixErr.FindStringSubmatch(text); m != nil {
		msg = m[1]
	}
	d := &hcl.Diagnostic{Severity: hcl.DiagError,
		Summary: "Nix syntax error in provision.nix: " + msg,
		Detail:  "The container's configuration imports provision.nix; fix it so that `nix-instantiate --parse` accepts it."}
	m := nixAt.FindStringSubmatch(text)
	if m == nil {
		m = nixAtOld.FindStringSubmatch(text)
	}
	if m != nil {
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		r := rangeAt(name, src, line, col)
		d.Subject = &r
	} else {
		r := rangeAt(name, src, 1, 1)
		d.Subject = &r
		d.Detail = text
	}
	return d, nil
}

// rangeAt is a one-character range at line:col (1-based, col in bytes)
// with its byte offset, as HCL's snippet writer needs.
func rangeAt(name string, src []byte, line, col int) hcl.Range {
	off, l := 0, 1
	for l < line && off < len(src) {
		i := bytes.IndexByte(src[off:], '\n')
		if i < 0 {
			off = len(src)
			break
		}
		off += i + 1
		l++
	}
	off = min(off+max(col-1, 0), len(src))
	end := min(off+1, len(src))
	return hcl.Range{Filename: name,
		Start: hcl.Pos{Line: line, Column: col, Byte: off},
		End:   hcl.Pos{Line: line, Column: col + (end - off), Byte: end}}
}
