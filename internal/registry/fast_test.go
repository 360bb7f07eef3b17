package registry

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fastSeeds are entries in many layouts, valid and not.
func fastSeeds(t testing.TB) [][]byte {
	seeds := [][]byte{[]byte(validEntry)}
	files, err := filepath.Glob("../../examples/state/containers/*.hcl")
	require.NoError(t, err)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		seeds = append(seeds, []byte(strings.Replace(string(b), `name         = "`+strings.TrimSuffix(filepath.Base(f), ".hcl")+`"`, `name = "web"`, 1)))
	}
	for _, r := range []struct{ old, new string }{
		{`"admin"]`, `"admin",]`},
		{`["shop", "admin"]`, `[]`},
		{`"alice"`, `"alice" # owner`},
		{`"alice"`, `"alice" // owner`},
		{`"alice"`, `"ali\"ce"`},
		{`"alice"`, `"$${x}"`},
		{`"alice"`, `"${x}"`},
		{`"alice"`, `"%{if x}y%{endif}"`},
		{`"alice"`, `"a\u0041"`},
		{`"alice"`, `"älice"`},
		{`"alice"`, "<<EOT\nalice\nEOT"},
		{`"running"`, `"stopped"`},
		{"name ", "name\t"},
		{"\n", "\r\n"},
		{"\n", "\n\n  \n"},
		{`deployed     = "2026-11-25T09:00:00Z"`, `deployed = ""`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `keep = true`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `keep = "true"`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `labels = { a = "b", "c d" = "e", f-g = "h", }`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `labels = { true = "x" }`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `labels = { a = "x", a = "y" }`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `labels = { a.b = "x" }`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `last_error = "line\nline\ttab \\ back"`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `/* block */ keep = false`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `ssh_keys = ["` + sshKey + `"]`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `address6 = "fd00::2"`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `address6 = ""`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `address6 = "fd00::g"`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `address6 = "10.0.0.1"`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `shared_with = ["jane", "bob"]` + "\n" + `shared_keys = ["` + sharedKey + `"]`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `shared_with = ["alice"]`},
		{`deployed     = "2026-11-25T09:00:00Z"`, "memory_max = \"2G\"\ncpu_weight = 50\ncpu_quota = \"200%\"\ntasks_max = 4096"},
		{`deployed     = "2026-11-25T09:00:00Z"`, `cpu_weight = 050`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `cpu_weight = 5.0`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `cpu_weight = 1e3`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `cpu_weight = 0`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `tasks_max = 99999999999`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `tasks_max = "4096"`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `memory_max = "lots"`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `expires_at = "2026-11-28T09:00:00Z"`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `expires_at = ""`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `expires_at = "soon"`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `protect_user = "customer"`},
		{`deployed     = "2026-11-25T09:00:00Z"`, `protect_user = "a:b"`},
	} {
		seeds = append(seeds, []byte(strings.Replace(validEntry, r.old, r.new, 1)))
	}
	return seeds
}

// agree fails when decodeFast accepts src but the full HCL decoder reads it
// differently (or rejects it).
func agree(t *testing.T, src []byte) bool {
	t.Helper()
	fast, ok := decodeFast("/s/containers/web.hcl", src)
	if !ok {
		return false
	}
	full, diags := decodeHCL("/s/containers/web.hcl", src)
	require.False(t, diags.HasErrors(), "fast path accepted what HCL rejects:\n%s\n%v", src, diags)
	require.Equal(t, full, fast, "fast path disagrees with HCL on:\n%s", src)
	return true
}

func TestDecodeFastAgreesWithHCL(t *testing.T) {
	accepted := 0
	for _, s := range fastSeeds(t) {
		if agree(t, s) {
			accepted++
		}
	}
	assert.Greater(t, accepted, 10, "the fast path takes the common layouts")
	_, ok := decodeFast("/s/containers/web.hcl", []byte(validEntry))
	assert.True(t, ok)
}

// TestDecodeFastTakesWhatPutWrites: every entry Put writes (ASCII values)
// is read by the fast path, identically to the full parser.
func TestDecodeFastTakesWhatPutWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tricky := []string{"", "a", `"`, `\`, "${x}", "$${x}", "%{x}", "$", "%", "a\nb", "\t", "# not a comment", "// nor this", "}", "]", ",", "=", "'", "''"}
	randText := func() string {
		var b strings.Builder
		for range rng.IntN(5) {
			b.WriteString(tricky[rng.IntN(len(tricky))])
		}
		return b.String()
	}
	r := Open(t.TempDir())
	for i := range 200 {
		c := testContainer("web", fmt.Sprintf("10.233.%d.%d", i/200, 2+i%200))
		c.LastError = randText()
		c.Labels = map[string]string{"k": strings.ReplaceAll(strings.ReplaceAll(randText(), "\n", ""), "\t", "")}
		c.Keep = i%2 == 0
		if i%4 == 1 {
			c.SharedWith = []string{"jane", "bob"}
			c.SharedKeys = []string{sharedKey}
			c.Limits = limits.Limits{MemoryMax: "2G", CPUWeight: 1 + i, CPUQuota: "150%", TasksMax: 100 * i}
			c.ExpiresAt = c.Created.Add(time.Duration(i) * time.Hour)
			c.ProtectUser = "customer"
		}
		if i%4 == 1 || i%4 == 2 { // with and without limits
			c.Address6 = netip.MustParseAddr(fmt.Sprintf("fd00::%x", 2+i))
		}
		if i%3 == 0 {
			c.Deployed = time.Time{}
			c.Aliases = nil
		}
		require.NoError(t, r.Put(c))
		src, err := os.ReadFile(r.Path("web"))
		require.NoError(t, err)
		// The fast path leaves template sequences and their escapes to HCL.
		all := c.LastError + c.Labels["k"]
		hasTemplate := strings.Contains(all, "{") && (strings.Contains(all, "$") || strings.Contains(all, "%")) ||
			strings.Contains(all, "$$") || strings.Contains(all, "%%")
		if !agree(t, src) && !hasTemplate {
			t.Fatalf("fast path refused what Put wrote:\n%s", src)
		}
		got, err := r.Get("web")
		require.NoError(t, err)
		c.normalize()
		assert.Equal(t, c, got)
	}
}

func FuzzDecodeFast(f *testing.F) {
	for _, s := range fastSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		agree(t, src)
	})
}
