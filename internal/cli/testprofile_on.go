//go:build devhosttest

package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// envTestCPUProfile names a directory the test binary writes a CPU profile
// of each run to (cpu-<pid>.prof), for profiling devhost under the load
// test. Honoured only with the devhosttest tag.
const envTestCPUProfile = "DEVHOST_TEST_CPUPROFILE"

// startTestProfile starts the CPU profile envTestCPUProfile asks for and
// returns what stops it.
func startTestProfile(io *IOStreams) (stop func()) {
	dir := ""
	if io.Env != nil {
		dir = io.Env(envTestCPUProfile)
	}
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("cpu-%d.prof", os.Getpid())))
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
