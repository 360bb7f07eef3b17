package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/lifecycle"
	"github.com/flyingcircusio/devhost/internal/names"
	"github.com/flyingcircusio/devhost/internal/registry"
)

func reserveTestOpts(t *testing.T, state string, caller lifecycle.Caller, out *bytes.Buffer) *reserveOptions {
	t.Helper()
	cfg := &hostconfig.Config{StateDir: state, Access: hostconfig.Access{Groups: []string{"users"}, AdminGroup: "wheel"}}
	return &reserveOptions{
		IO:       &IOStreams{Out: out, ErrOut: &bytes.Buffer{}},
		Config:   func() (*hostconfig.Config, error) { return cfg, nil },
		Registry: func() (*registry.Registry, error) { return registry.Open(state), nil },
		Caller:   func() (lifecycle.Caller, error) { return caller, nil },
		JSON:     true,
		Now:      func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) },
	}
}

// Concurrent reservations (as from several laptops) never share a name.
// Every caller draws the same "random" sequence, so without the registry
// lock several would see the first name free and take it.
func TestReserveConcurrent(t *testing.T) {
	state := t.TempDir()
	const n = 24
	var seq []byte
	for i := 0; i < n; i++ {
		seq = append(seq, 0xa0, 0, 0, 0, byte(i), 0) // a0000000<i>0
	}
	got := make([]reservation, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var out bytes.Buffer
			opts := reserveTestOpts(t, state, lifecycle.Caller{User: "alice", Groups: []string{"users"}}, &out)
			opts.Random = bytes.NewReader(seq)
			if err := reserveRun(opts); err != nil {
				t.Error(err)
				return
			}
			if err := json.Unmarshal(out.Bytes(), &got[i]); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, r := range got {
		require.NoError(t, names.Container(r.Name))
		assert.Len(t, r.Name, 11)
		assert.False(t, seen[r.Name], "name %s handed out twice", r.Name)
		seen[r.Name] = true
		assert.Equal(t, "alice", r.Owner)
		assert.Equal(t, "2026-11-25T12:00:00Z", r.Created)
		data, err := os.ReadFile(filepath.Join(state, "reservations", r.Name+".json"))
		require.NoError(t, err)
		var onDisk reservation
		require.NoError(t, json.Unmarshal(data, &onDisk))
		assert.Equal(t, r, onDisk)
	}
}

func TestReserveRefusesNonMembers(t *testing.T) {
	state := t.TempDir()
	var out bytes.Buffer
	opts := reserveTestOpts(t, state, lifecycle.Caller{User: "mallory", Groups: []string{"nogroup"}}, &out)
	err := reserveRun(opts)
	var ie *InputError
	require.ErrorAs(t, err, &ie)
	assert.Contains(t, err.Error(), `user "mallory" may not reserve container names`)
	_, err = os.Stat(filepath.Join(state, "reservations"))
	assert.True(t, os.IsNotExist(err), "nothing written")
}
