package environment

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/flyingcircusio/devhost/internal/inputfile"
	"github.com/flyingcircusio/devhost/internal/names"
	"github.com/flyingcircusio/devhost/internal/rawconfig"
)

// The most devhost reads of each file of an environment. Real files are far
// smaller; the limits keep a wrong file (a disk image, a log) from being
// read whole into memory.
const (
	// MaxConfig bounds environment.cfg: about 300,000 lines of options.
	MaxConfig = 8 << 20
	// MaxHostMap bounds hostmap.json, which holds names only.
	MaxHostMap = 1 << 20
	// MaxProvisionNix is what the devhost's ensure accepts for
	// provision.nix (lifecycle.MaxProvision).
	MaxProvisionNix = 1 << 20
	// MaxProvisionSh bounds provision.sh, a script.
	MaxProvisionSh = 1 << 20
)

// Options tune Load.
type Options struct {
	// DisplayRoot is how the deployment root is written in diagnostics'
	// file names (e.g. the --root the user typed); default: root itself.
	// "." gives names like environments/dev/environment.cfg.
	DisplayRoot string
	// NixInstantiate and Bash are the commands checking provision.nix and
	// provision.sh: a path, or a name looked up in PATH. Defaults
	// "nix-instantiate" and "bash". When the command is not found, the
	// check is skipped with a warning.
	NixInstantiate, Bash string
	// Timeout bounds each check command; default 30 seconds.
	Timeout time.Duration
	// NoScriptChecks skips both checks (no warning).
	NoScriptChecks bool
}

// Load reads environments/<name>/ below root (environment.cfg, hostmap.json,
// provision.nix, provision.sh), builds the model and validates it. It never
// writes. The diagnostics are every problem found; the Environment is nil
// only when environment.cfg could not be read. When RawConfigParser would
// reject the file, the Environment has no File and no hosts: it only serves
// Files, so that the parse errors are shown with their source lines.
func Load(ctx context.Context, root, name string, opts Options) (*Environment, hcl.Diagnostics) {
	display := opts.DisplayRoot
	if display == "" {
		display = root
	}
	shown := func(parts ...string) string {
		return filepath.Join(append([]string{display, "environments", name}, parts...)...)
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError,
			Summary: fmt.Sprintf("invalid environment name %q", name),
			Detail:  "An environment is a directory name under environments/, e.g. dev."}}
	}
	dir := filepath.Join(root, "environments", name)
	cfgPath := filepath.Join(dir, "environment.cfg")
	cfgName := shown("environment.cfg")
	src, err := inputfile.Read(cfgPath, MaxConfig)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, hcl.Diagnostics{missingEnvironment(root, name, cfgName)}
	}
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: fmt.Sprintf("cannot read %s", cfgName), Detail: err.Error()}}
	}
	// Snippets need "\n" line ends; offsets are unchanged.
	files := map[string][]byte{cfgName: rawconfig.SnippetSource(src)}
	f, err := rawconfig.Parse(cfgName, src)
	if err != nil {
		var re *rawconfig.Error
		if errors.As(err, &re) {
			return &Environment{Name: name, Root: root, Dir: dir, ConfigFile: cfgName, HostMap: &HostMap{}, files: files}, re.Diagnostics()
		}
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: fmt.Sprintf("cannot read %s", cfgName), Detail: err.Error()}}
	}

	hm, hmSrc, diags := ReadHostMap(filepath.Join(dir, HostMapFile), shown(HostMapFile))
	if hmSrc != nil {
		files[hm.Name] = hmSrc
	}
	env, bdiags := Build(name, f, hm)
	diags = append(diags, bdiags...)
	env.Root, env.Dir, env.files = root, dir, files

	env.Provision = Provision{NixFile: shown("provision.nix"), ShFile: shown("provision.sh")}
	nixSrc, nixErr := inputfile.Read(filepath.Join(dir, "provision.nix"), MaxProvisionNix)
	shSrc, shErr := inputfile.Read(filepath.Join(dir, "provision.sh"), MaxProvisionSh)
	env.Provision.NixExists, env.Provision.ShExists = nixErr == nil, shErr == nil
	env.Provision.NixCopied = env.Provision.NixExists && !strings.Contains(string(shSrc), "provision.nix")
	for i, e := range []error{nixErr, shErr} {
		if e != nil && !errors.Is(e, fs.ErrNotExist) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: fmt.Sprintf("cannot read %s", []string{env.Provision.NixFile, env.Provision.ShFile}[i]), Detail: e.Error()})
		}
	}
	if len(env.Provisioned()) > 0 {
		// devhost up records the environment with every container; the
		// devhost's registry refuses other names at ensure.
		if err := names.Environment(name); err != nil {
			var ne *names.Error
			detail := "devhost up records the environment's name with every container on the devhost."
			if errors.As(err, &ne) {
				detail += " " + strings.ToUpper(ne.Hint[:1]) + ne.Hint[1:] + "."
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: err.Error(), Detail: detail})
		}
		if !env.Provision.NixExists && !env.Provision.ShExists {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning,
				Summary: fmt.Sprintf("No provisioning code found in environments/%s/provision.nix or environments/%s/provision.sh. This might be unintentional.", name, name),
				Detail:  "batou gives this warning too. The containers get devhost's base configuration only."})
		}
	}
	if env.Provision.NixExists {
		files[env.Provision.NixFile] = nixSrc
	}
	if env.Provision.ShExists {
		files[env.Provision.ShFile] = shSrc
	}
	if !opts.NoScriptChecks {
		c := checker{ctx: ctx, timeout: opts.Timeout}
		if env.Provision.NixExists {
			diags = append(diags, c.nix(cmdOr(opts.NixInstantiate, "nix-instantiate"), filepath.Join(dir, "provision.nix"), env.Provision.NixFile, nixSrc)...)
		}
		if env.Provision.ShExists {
			diags = append(diags, c.bash(cmdOr(opts.Bash, "bash"), filepath.Join(dir, "provision.sh"), env.Provision.ShFile, shSrc)...)
		}
	}
	return env, diags
}

func cmdOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// missingEnvironment is batou's MissingEnvironment, with the environments
// that do exist, and a hint for batou 2.2's environments/<name>.cfg layout.
func missingEnvironment(root, name, cfgName string) *hcl.Diagnostic {
	var have []string
	if ms, err := filepath.Glob(filepath.Join(root, "environments", "*", "environment.cfg")); err == nil {
		for _, m := range ms {
			have = append(have, filepath.Base(filepath.Dir(m)))
		}
	}
	sort.Strings(have)
	detail := fmt.Sprintf("There is no %s.", cfgName)
	if _, err := os.Stat(filepath.Join(root, "environments", name+".cfg")); err == nil {
		detail += fmt.Sprintf(" batou 2.3 and later (and devhost) read environments/%s/environment.cfg instead of environments/%s.cfg; move the file there.", name, name)
	}
	if len(have) > 0 {
		detail += " Environments here: " + strings.Join(have, ", ") + "."
	} else {
		detail += " Run devhost in a batou deployment (the directory with environments/), or pass --root."
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Missing environment `%s`", name), Detail: detail}
}
