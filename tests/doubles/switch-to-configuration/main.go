// Command switch-to-configuration is a test double for a NixOS system's
// bin/switch-to-configuration, which activates that system. The
// nixos-rebuild double links it into every system directory it makes; it
// records its argv and, as Extra["system"], the system directory it was
// run from (<system>/bin/switch-to-configuration).
package main

import (
	"os"
	"path/filepath"

	"github.com/flyingcircusio/devhost/tests/doubles/double"
)

func main() {
	r := double.Start("switch-to-configuration")
	r.Set("system", filepath.Dir(filepath.Dir(os.Args[0])))
	r.FailIfAsked()
	r.Exit(0, "")
}
