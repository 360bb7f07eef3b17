package generator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/nixlit"
)

// libDouble is a test double of nixpkgs' lib with just the functions
// configuration.nix uses, shaped like the real ones (mkIf and mkMerge
// return the module system's _type markers). With NIXPKGS_LIB set, the
// test uses the real lib instead.
const libDouble = `{
  optional = c: x: if c then [ x ] else [ ];
  mkMerge = contents: { _type = "merge"; inherit contents; };
  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkDefault = content: { _type = "override"; priority = 1000; inherit content; };
  trivial.release = "26.05";
  escapeShellArg = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";
  concatStringsSep = builtins.concatStringsSep;
  concatMapStringsSep = sep: f: l: builtins.concatStringsSep sep (map f l);
}`

type evaluatedUser struct {
	IsNormalUser bool
	Home         *string
	Group        *string
	ExtraGroups  []string
	Keys         []string
	CreateHome   bool
}

type evaluatedConfiguration struct {
	Imports     []string
	HostName    string
	IsContainer bool
	Ports       []int
	SSHD        bool
	SudoNoPass  bool
	Users       map[string]evaluatedUser
	Groups      []string
	Script      string
	NginxIf     bool
	NginxVhost  []string
	// StateVersion is system.stateVersion's value under its mkDefault;
	// Release is the lib's release, the fallback for an entry without one.
	StateVersion string
	Release      string
}

// TestContainerConfigurationEvaluates calls every container's
// configuration.nix as the module system would and compares what it
// declares with the registry entry.
func TestContainerConfigurationEvaluates(t *testing.T) {
	nix := nixInstantiate(t)
	lib := libDouble
	if p := os.Getenv("NIXPKGS_LIB"); p != "" {
		lib = fmt.Sprintf("import %q", p)
	} else {
		t.Log("NIXPKGS_LIB not set: evaluating with a double of nixpkgs' lib")
	}
	cfg := testConfig(t.TempDir())
	cfg.Compat.BootstrapKey = true
	cs := containers(t, 4)
	// A shared user's key, with a comment a hand edit could have written:
	// it reaches Nix only through the escaper.
	cs[2].SharedWith = []string{"jane"}
	cs[2].SharedKeys = []string{strings.Fields(sshKey(t, 50))[0] + " " + strings.Fields(sshKey(t, 50))[1] + ` shared:jane ${builtins.abort "x"} '' \`}
	set, err := Generate(cfg, cs, loadTemplates(t))
	require.NoError(t, err)
	require.NoError(t, Write(cfg.GeneratedDir, set))
	require.NoError(t, os.MkdirAll(filepath.Dir(ProvisionNixPath(cfg, "c1")), 0o755))
	require.NoError(t, os.WriteFile(ProvisionNixPath(cfg, "c1"), []byte("{ }\n"), 0o644))

	var expr strings.Builder
	fmt.Fprintf(&expr, `let
  lib = %s;
  eval = file: nginx:
    let
      m = import file { config.services.nginx.enable = nginx; inherit lib; pkgs = { openssl = "openssl"; coreutils = "coreutils"; }; };
      base = builtins.head m.config.contents;
      ng = builtins.elemAt m.config.contents 1;
    in {
      imports = map toString m.imports;
      hostName = base.networking.hostName;
      isContainer = base.boot.isContainer;
      ports = base.networking.firewall.allowedTCPPorts;
      sshd = base.services.openssh.enable;
      sudoNoPass = !base.security.sudo.wheelNeedsPassword;
      users = builtins.mapAttrs (n: u: {
        inherit (u) isNormalUser;
        home = u.home or null;
        group = u.group or null;
        createHome = u.createHome or false;
        extraGroups = u.extraGroups or [ ];
        keys = u.openssh.authorizedKeys.keys or [ ];
      }) base.users.users;
      groups = builtins.attrNames base.users.groups;
      script = base.systemd.services.devhost-selfsigned-cert.script;
      nginxIf = ng.condition;
      nginxVhost = builtins.attrNames ng.content.services.nginx.virtualHosts;
      stateVersion = base.system.stateVersion.content;
      release = lib.trivial.release;
    };
in {
`, lib)
	for _, c := range cs {
		lit, err := nixlit.Path(filepath.Join(cfg.GeneratedDir, ConfigurationFile(c.Name)))
		require.NoError(t, err)
		fmt.Fprintf(&expr, "  %s = eval %s true;\n", c.Name, lit)
	}
	expr.WriteString("}\n")
	cmd := exec.CommandContext(context.Background(), nix[0], "--eval", "--strict", "--json", "--expr", expr.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var got map[string]evaluatedConfiguration
	require.NoError(t, json.Unmarshal(out, &got))

	for _, c := range cs {
		g := got[c.Name]
		if c.Name == "c1" {
			assert.Equal(t, []string{ProvisionNixPath(cfg, "c1")}, g.Imports, "provision.nix imported when it exists")
		} else {
			assert.Empty(t, g.Imports, c.Name)
		}
		assert.Equal(t, c.Name, g.HostName)
		if c.StateVersion != "" {
			assert.Equal(t, c.StateVersion, g.StateVersion, "the recorded state version, not the channel's release")
		} else {
			assert.Equal(t, g.Release, g.StateVersion, "no recorded state version: the channel's release")
		}
		assert.True(t, g.IsContainer)
		assert.Equal(t, []int{22, 80, 443}, g.Ports)
		assert.True(t, g.SSHD)
		assert.True(t, g.SudoNoPass)
		assert.True(t, g.NginxIf)
		assert.Equal(t, []string{"devhost-fallback"}, g.NginxVhost)
		assert.ElementsMatch(t, []string{"service", "devhost-cert"}, g.Groups)

		dev := g.Users["developer"]
		assert.True(t, dev.IsNormalUser)
		assert.ElementsMatch(t, []string{"wheel", "service"}, dev.ExtraGroups)
		assert.Equal(t, slices.Concat(c.SSHKeys, c.SharedKeys, []string{BootstrapKey}), dev.Keys)
		if c.ServiceUser == "" {
			assert.Len(t, g.Users, 1, c.Name)
		} else {
			su := g.Users[c.ServiceUser]
			require.NotNil(t, su.Home, c.Name)
			assert.Equal(t, "/srv/"+c.ServiceUser, *su.Home)
			assert.Equal(t, "service", *su.Group)
			assert.True(t, su.CreateHome)
		}

		names := []string{c.Name, c.Name + ".dev.example.com"}
		for _, a := range c.Aliases {
			names = append(names, a+"."+c.Name+".dev.example.com")
		}
		san := "DNS:" + strings.Join(names, ",DNS:")
		assert.Contains(t, g.Script, "'subjectAltName="+san+"'")
		assert.Contains(t, g.Script, "'"+strings.Join(names, " ")+"'")
		if bash, err := exec.LookPath("bash"); err == nil {
			check := exec.CommandContext(context.Background(), bash, "-n")
			check.Stdin = strings.NewReader(g.Script)
			outb, err := check.CombinedOutput()
			assert.NoError(t, err, "bash -n of the certificate script: %s", outb)
		}
	}
}
