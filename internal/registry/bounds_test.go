package registry

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/hclinput"
	"github.com/flyingcircusio/devhost/internal/inputfile"
)

// deepEntry is a valid entry whose labels attribute nests 100,000 brackets
// on line 9 (few enough to stay under MaxEntrySize). HCL's parser
// overflows the Go stack on it, a fatal error that kills the process:
// before the depth check every devhost command died on such an entry.
var deepEntry = validEntry + "labels = " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "\n"

// TestDeepEntryIsRefused: Decode, Get, LoadAll and Put refuse the entry with
// a positioned diagnostic instead of crashing.
func TestDeepEntryIsRefused(t *testing.T) {
	r := Open(t.TempDir())
	writeEntry(t, r, "web", deepEntry)
	path := r.Path("web")

	check := func(what string, err error) {
		t.Helper()
		var de *diag.Error
		require.ErrorAs(t, err, &de, what)
		require.NotNil(t, de.Diags[0].Subject, what)
		assert.Equal(t, "Nesting too deep", de.Diags[0].Summary, what)
		assert.Equal(t, path, de.Diags[0].Subject.Filename, what)
		assert.Equal(t, 9, de.Diags[0].Subject.Start.Line, what)
		assert.Equal(t, len("labels = ")+hclinput.MaxDepth+1, de.Diags[0].Subject.Start.Column, what)
	}
	_, diags := Decode(path, []byte(deepEntry))
	check("Decode", diag.NewError(diags, nil))
	_, err := r.Get("web")
	check("Get", err)
	_, err = r.LoadAll()
	check("LoadAll", err)
	check("Put", r.Put(testContainer("web", "10.233.0.2")))
}

// TestSpecialFilesInTheRegistryAreRefused: a FIFO is reported at once
// (reading it would wait for a writer forever), and so are a symbolic link
// and an oversized file; the other entries are still loaded.
func TestSpecialFilesInTheRegistryAreRefused(t *testing.T) {
	r := Open(t.TempDir())
	require.NoError(t, r.Put(testContainer("good", "10.233.0.9")))
	require.NoError(t, syscall.Mkfifo(r.Path("fifo"), 0o644))
	require.NoError(t, os.Symlink(r.Path("good"), r.Path("link")))
	writeEntry(t, r, "big", validEntry+"# "+strings.Repeat("x", MaxEntrySize)+"\n")

	done := make(chan struct{})
	go func() {
		defer close(done)
		all, err := r.LoadAll()
		var de *diag.Error
		require.ErrorAs(t, err, &de)
		got := map[string]string{}
		for _, d := range de.Diags {
			got[filepath.Base(d.Subject.Filename)] = d.Summary + ": " + d.Detail
		}
		assert.Len(t, got, 3)
		assert.Contains(t, got["fifo.hcl"], "named pipe (FIFO)")
		assert.Contains(t, got["fifo.hcl"], r.Path("fifo"))
		assert.Contains(t, got["link.hcl"], "symbolic link")
		assert.Contains(t, got["big.hcl"], "larger than 256 KiB")
		require.Len(t, all, 1)
		assert.Equal(t, "good", all[0].Name)

		_, err = r.Get("fifo")
		var nr *inputfile.NotRegularError
		assert.True(t, errors.As(err, &nr), "Get: %v", err)
		c := testContainer("fifo", "10.233.0.10")
		assert.True(t, errors.As(r.Put(c), &nr), "Put must not replace what it cannot read")
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the registry waited on a FIFO")
	}
	fi, err := os.Lstat(r.Path("fifo"))
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&os.ModeNamedPipe, "the FIFO is left alone")
}
