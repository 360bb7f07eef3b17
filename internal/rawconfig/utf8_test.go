package rawconfig

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os/exec"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// TestInvalidUTF8MatchesPython compares invalidUTF8 with CPython's UTF-8
// decoder on every lead byte followed by up to three bytes from each class
// that matters: when an incremental decode of the bytes seen so far already
// raises (detect < len), and where the error starts.
func TestInvalidUTF8MatchesPython(t *testing.T) {
	py := python3(t)
	follow := []byte{0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc3, 0xe2, 0xf0, 0xff}
	var inputs [][]byte
	for lead := 0x80; lead <= 0xff; lead++ {
		inputs = append(inputs, []byte{'a', byte(lead)})
		for _, b1 := range follow {
			inputs = append(inputs, []byte{'a', byte(lead), b1})
			for _, b2 := range follow {
				inputs = append(inputs, []byte{'a', byte(lead), b1, b2})
				inputs = append(inputs, []byte{'a', byte(lead), b1, b2, 0x80})
			}
		}
	}
	var stdin bytes.Buffer
	for _, in := range inputs {
		stdin.WriteString(hex.EncodeToString(in) + "\n")
	}
	cmd := exec.Command(py, "testdata/utf8_errors.py")
	cmd.Stdin = &stdin
	out, err := cmd.Output()
	require.NoError(t, err)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for i, in := range inputs {
		require.True(t, sc.Scan())
		var partial, final, start int
		_, err := fmt.Sscan(sc.Text(), &partial, &final, &start)
		require.NoError(t, err)
		bad, detect := invalidUTF8(in)
		require.Equal(t, final == 1, !utf8.Valid(in), "% x", in)
		if final == 1 {
			require.Equal(t, start, bad, "error start of % x", in)
		}
		require.Equal(t, partial == 1, detect < len(in), "incremental decode of % x (case %d)", in, i)
	}
}
