package registry

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// execCmd is a started child test process.
type execCmd struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func startHelper(t *testing.T, dir string) *execCmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperIncrement$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REGISTRY_TEST_DIR="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return &execCmd{cmd: cmd, out: &out}
}

func (c *execCmd) wait() (string, error) {
	err := c.cmd.Wait()
	return c.out.String(), err
}
