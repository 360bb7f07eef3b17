package nixosmodule_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkModuleEval measures one evaluation of the module (with stubs)
// reading a generated set of n containers, each with a virtual host with two
// aliases and a hosts entry: the host's evaluation grows only with the number
// of containers, never with what they contain.
func BenchmarkModuleEval(b *testing.B) {
	nix, err := exec.LookPath("nix-instantiate")
	lib := os.Getenv("NIXPKGS_LIB")
	if err != nil || lib == "" {
		b.Skip("needs nix-instantiate and NIXPKGS_LIB")
	}
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			containers, vhosts, hosts := map[string]any{}, map[string]any{}, map[string]any{}
			for i := range n {
				name := fmt.Sprintf("c%d", i)
				addr := fmt.Sprintf("10.233.%d.%d", i/250, i%250+2)
				containers[name] = map[string]any{"path": "/nix/var/nix/profiles/per-container/" + name + "/system",
					"privateNetwork": true, "hostAddress": "10.233.0.1", "localAddress": addr, "autoStart": i%2 == 0}
				vhosts[name+".dev.example.com"] = map[string]any{
					"serverAliases": []string{"www." + name + ".dev.example.com", "api." + name + ".dev.example.com"},
					"forceSSL":      true, "enableACME": true,
					"locations": map[string]any{"/": map[string]any{"proxyPass": "https://" + name, "proxyWebsockets": true}},
				}
				hosts[addr] = []string{name}
			}
			gen := filepath.Join(dir, "generated")
			writeGeneratedSetB(b, gen, map[string]any{"version": 1, "containers": containers, "virtualHosts": vhosts, "hosts": hosts})
			casePath := writeCase(b, dir, role(base(gen)))
			harness, _ := filepath.Abs(filepath.Join("testdata", "eval.nix"))
			b.ResetTimer()
			for b.Loop() {
				out, err := exec.Command(nix, "--eval", "--strict", "--json", harness,
					"--argstr", "libPath", lib, "--argstr", "casePath", casePath).CombinedOutput()
				if err != nil {
					b.Fatalf("%v\n%s", err, out)
				}
			}
		})
	}
}
