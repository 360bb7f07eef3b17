package nixosmodule_test

import (
	"bufio"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// systemdPackage is a package of systemd.packages as the harnesses return
// it: its name and what its build runs (runCommand's buildCommand, and the
// script the module passes as a file).
type systemdPackage struct {
	Name         string  `json:"name"`
	BuildCommand *string `json:"buildCommand"`
	Script       *string `json:"script"`
}

// dropInPackage is the name of the module's package of per-container drop-ins.
const dropInPackage = "devhost-container-units"

// instance is one devhost container as systemd sees it: an instance of
// NixOS' container@ template, configured by its conf file and a drop-in.
type instance struct {
	Conf   map[string]string // /etc/<confDir>/NAME.conf, parsed
	DropIn map[string]string // container@NAME.service.d/devhost.conf, parsed ("Section.Key")
}

// instances finds the containers' conf files (etc entries under confDir)
// and builds the module's drop-in package by running its build command
// with bash, as Nix' builder would (out and scriptPath set), and reads
// what it wrote. Every drop-in must belong to a conf file.
func instances(t testing.TB, etc map[string]string, confDir string, pkgs []systemdPackage) map[string]instance {
	t.Helper()
	out := map[string]instance{}
	for path, text := range etc {
		name, ok := strings.CutPrefix(path, confDir+"/")
		if !ok || !strings.HasSuffix(name, ".conf") {
			continue
		}
		out[strings.TrimSuffix(name, ".conf")] = instance{Conf: parseEnvFile(t, text)}
	}
	for _, p := range pkgs {
		if p.Name != dropInPackage {
			continue
		}
		require.NotNil(t, p.BuildCommand, "the drop-in package records its build command")
		require.NotNil(t, p.Script, "the drop-in package passes its script")
		dir := t.TempDir()
		script := filepath.Join(dir, "script")
		require.NoError(t, os.WriteFile(script, []byte(*p.Script), 0o644))
		outDir := filepath.Join(dir, "out")
		cmd := exec.Command("bash", "-e", "-c", *p.BuildCommand)
		cmd.Env = append(os.Environ(), "out="+outDir, "scriptPath="+script)
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "building %s: %s", p.Name, b)
		units := filepath.Join(outDir, "etc", "systemd", "system")
		require.NoError(t, filepath.WalkDir(outDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(units, path)
			require.NoError(t, err)
			unit, file, _ := strings.Cut(rel, "/")
			name, ok := strings.CutPrefix(unit, "container@")
			name, ok2 := strings.CutSuffix(name, ".service.d")
			require.True(t, ok && ok2 && file == "devhost.conf", "unexpected file %s in %s", rel, p.Name)
			inst, ok := out[name]
			require.True(t, ok, "drop-in for %s, which has no conf file", name)
			text, err := os.ReadFile(path)
			require.NoError(t, err)
			inst.DropIn = parseUnitFile(t, string(text))
			out[name] = inst
			return nil
		}))
	}
	return out
}

// parseEnvFile reads an EnvironmentFile as systemd does for the lines the
// module and NixOS write: KEY=VALUE, a value in double quotes unquoted,
// blank lines skipped. A key twice is an error.
func parseEnvFile(t testing.TB, text string) map[string]string {
	t.Helper()
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "line %q of %q", line, text)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		_, dup := m[k]
		require.False(t, dup, "key %s twice in %q", k, text)
		m[k] = v
	}
	return m
}

// parseUnitFile reads a unit file's settings as "Section.Key" = value.
func parseUnitFile(t testing.TB, text string) map[string]string {
	t.Helper()
	m := map[string]string{}
	section := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "line %q of %q", line, text)
			_, dup := m[section+"."+k]
			require.False(t, dup, "%s twice in %q", k, text)
			m[section+"."+k] = v
		}
	}
	return m
}
