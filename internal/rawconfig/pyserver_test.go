package rawconfig

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// pyServer is a persistent `configparser_json.py --serve` process: it
// answers CPython's view of one input at a time over a length-prefixed
// protocol, so a fuzz target or a large generated corpus does not start
// Python per input.
type pyServer struct {
	mu  sync.Mutex
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startPyServer(t testing.TB, py string) *pyServer {
	t.Helper()
	cmd := exec.Command(py, pythonScript, "--serve")
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "PYTHONUTF8=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	s := &pyServer{cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Wait()
	})
	return s
}

// Query returns CPython's JSON for src.
func (s *pyServer) Query(src []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := fmt.Fprintf(s.in, "%d\n", len(src)); err != nil {
		return nil, err
	}
	if _, err := s.in.Write(src); err != nil {
		return nil, err
	}
	header, err := s.out.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("python server: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(header))
	if err != nil {
		return nil, fmt.Errorf("python server header %q: %w", header, err)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(s.out, buf); err != nil {
		return nil, fmt.Errorf("python server: %w", err)
	}
	return buf, nil
}
