package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Two containers booting at once, with each other's old addresses (a
// `devhost up --rebuild` of two hosts), must both end up in the hosts file.
func TestHostsEntryConcurrentBoots(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	require.NoError(t, os.WriteFile(path, []byte("127.0.0.1 localhost\n"), 0o644))
	for round := 0; round < 100; round++ {
		a, b := "10.100.0.2", "10.100.0.3"
		if round%2 == 1 {
			a, b = b, a
		}
		var wg sync.WaitGroup
		for _, e := range [][2]string{{a, "web"}, {b, "db"}} {
			wg.Add(1)
			go func(addr, name string) {
				defer wg.Done()
				assert.NoError(t, hostsEntry(path, addr, name))
			}(e[0], e[1])
		}
		wg.Wait()
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		want := []string{"127.0.0.1 localhost", a + " web", b + " db"}
		got := strings.Split(strings.TrimSpace(string(data)), "\n")
		require.ElementsMatch(t, want, got, fmt.Sprintf("round %d", round))
	}
}
