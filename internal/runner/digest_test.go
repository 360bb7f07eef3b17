package runner

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDigest(t *testing.T) {
	long := strings.Repeat("x", 10_000)
	tests := []struct {
		name  string
		input []string // written one after the other
		want  string
	}{
		{"short output is kept", []string{"a\nb\n", "c"}, "a\nb\nc"},
		{"a long line is cut in the middle", []string{"<" + long + ">\n"},
			"<" + long[:3] + " …[9994 bytes]… " + long[:3] + ">\n"},
		{"in any number of writes", strings.Split("<"+long+">\n", ""),
			"<" + long[:3] + " …[9994 bytes]… " + long[:3] + ">\n"},
		{"a line of up to 2×keep is whole", []string{strings.Repeat("y", 8) + "\n"}, strings.Repeat("y", 8) + "\n"},
		{"first and last lines", []string{"1\n2\n3\n4\n5\n6\n7\n"}, "1\n2\n…[2 lines]…\n5\n6\n7\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &digest{headLines: 2, tailLines: 3, keep: 4}
			for _, s := range tt.input {
				_, _ = d.Write([]byte(s))
			}
			assert.Equal(t, tt.want, string(d.Bytes()))
		})
	}
}

// TestDigestMemoryIsBounded: however much is written, the digest holds
// its lines and no more.
func TestDigestMemoryIsBounded(t *testing.T) {
	d := newDigest()
	chunk := []byte(strings.Repeat("z", 1<<20) + "\n" + strings.Repeat("w", 1<<19))
	for range 64 {
		_, _ = d.Write(chunk)
	}
	assert.LessOrEqual(t, cap(d.cur)+cap(d.curEnd), 8*digestKeep)
	assert.LessOrEqual(t, len(d.Bytes()), (digestHeadLines+digestTailLines+2)*(2*digestKeep+32))
}

// TestNixErrorPositionSurvivesLongLines: real nix-instantiate reports an
// error in an expression whose line 2 is 64 KiB long; the position it
// prints must be in what the runner keeps (Result.Stderr) and in the
// error devhost shows and records, which stay small. Before, only the last
// 64 KiB of standard error were kept — the source line Nix quotes after
// the position — and the error's last 40 lines and last_error's 4,000
// bytes held nothing but that line.
func TestNixErrorPositionSurvivesLongLines(t *testing.T) {
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate not found (CI installs nix-bin)")
	}
	path := filepath.Join(t.TempDir(), "provision.nix")
	long := strings.Repeat("a", 64<<10)
	require.NoError(t, os.WriteFile(path, []byte("{\n  x = \""+long+"\" + undefinedvar;\n}\n"), 0o644))
	x := &Exec{Timeout: time.Minute}
	res, err := x.Run(context.Background(), Cmd{Argv: []string{"nix-instantiate", "--eval", "--strict", path}})
	var e *Error
	require.ErrorAs(t, err, &e)
	pos := path + ":2:" // Nix 2.8: "at /…/provision.nix:2:65548:"
	assert.Contains(t, string(res.Stderr), pos)
	assert.Contains(t, string(res.Stderr), "undefined variable 'undefinedvar'")
	assert.Contains(t, e.Error(), pos)
	assert.Contains(t, e.Error(), "undefined variable 'undefinedvar'")
	assert.Less(t, len(e.Error()), 8<<10)
	assert.Contains(t, Shorten(e.Error(), 4000), pos, "last_error keeps it")
}

// TestErrorPositionAtTheEndOfAHugeLine: older Nix puts the position at
// the end of the message line (", at /path:12:3"); it survives a message
// of 64 KiB and more output after it.
func TestErrorPositionAtTheEndOfAHugeLine(t *testing.T) {
	needSh(t)
	script := `printf 'error: value %s, at /x/provision.nix:12:3\n' "$(head -c 70000 /dev/zero | tr '\0' v)" >&2
i=0; while [ $i -lt 500 ]; do echo "trace line $i" >&2; i=$((i+1)); done; exit 1`
	x := &Exec{Timeout: time.Minute}
	_, err := x.Run(context.Background(), Cmd{Argv: []string{"sh", "-c", script}})
	var e *Error
	require.True(t, errors.As(err, &e))
	assert.Contains(t, e.Tail, ", at /x/provision.nix:12:3")
	assert.Contains(t, e.Tail, "trace line 499")
	assert.Less(t, len(e.Tail), 16<<10)
}

func TestShorten(t *testing.T) {
	assert.Equal(t, "short", Shorten("short", 10))
	s := Shorten("aaaaaaaaaaéééééééééébbbbbbbbbb", 12)
	assert.Equal(t, "aaaa\n…\nbbbbbbbb", s)
	assert.Equal(t, "ab\n…\n€z", Shorten("ab€€€€€€z", 7), "cuts at UTF-8 boundaries")
}
