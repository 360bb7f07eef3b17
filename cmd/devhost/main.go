// Command devhost runs personal development deployments as NixOS containers
// on a shared NixOS machine. See README.md.
package main

import (
	"os"

	"github.com/flyingcircusio/devhost/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args, cli.SystemIO())) }
