package lifecycle

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/diag"
)

func TestQuota(t *testing.T) {
	h, _ := testHost(t)
	h.Cfg.Access.MaxContainersPerUser = 2
	ctx := context.Background()
	ensure := func(name string, c Caller) error {
		_, err := h.Ensure(ctx, EnsureRequest{Name: name, Channel: "https://example.org/c.tar.xz", Caller: c})
		return err
	}
	require.NoError(t, ensure("a1", alice))
	require.NoError(t, ensure("a2", alice))
	err := ensure("a3", alice)
	require.ErrorIs(t, err, ErrDenied)
	assert.Contains(t, err.Error(), "allows 2 containers per user (access.max_containers_per_user)")
	assert.Contains(t, err.Error(), "a1, a2")
	_, gerr := h.Reg.Get("a3")
	assert.Error(t, gerr, "nothing registered")

	require.NoError(t, ensure("a1", alice), "updating an existing container is not a new one")
	require.NoError(t, ensure("b1", Caller{User: "bob", Groups: []string{"users"}}), "the limit is per user")
	require.NoError(t, ensure("c1", Caller{User: "carol", Groups: []string{"wheel"}}))
	require.NoError(t, ensure("c2", Caller{User: "carol", Groups: []string{"wheel"}}))
	require.NoError(t, ensure("c3", Caller{User: "carol", Groups: []string{"wheel"}}), "admins are exempt")
}

// TestHelperQuotaEnsure is run by TestQuotaHoldsForConcurrentProcesses in
// child processes; it does nothing otherwise.
func TestHelperQuotaEnsure(t *testing.T) {
	dir, name := os.Getenv("DEVHOST_QUOTA_DIR"), os.Getenv("DEVHOST_QUOTA_NAME")
	if dir == "" {
		t.Skip("helper process")
	}
	h, _ := testHostAt(t, dir)
	h.Cfg.Access.MaxContainersPerUser = 2
	_, err := h.Ensure(context.Background(), EnsureRequest{Name: name, Channel: "https://example.org/c.tar.xz", Caller: alice})
	if err != nil {
		fmt.Println("ENSURE-ERROR:", err)
	}
}

// TestQuotaHoldsForConcurrentProcesses: five devhost processes of one
// user ensure new containers at once; the limit of two holds.
func TestQuotaHoldsForConcurrentProcesses(t *testing.T) {
	dir := t.TempDir()
	type child struct {
		cmd *exec.Cmd
		out bytes.Buffer
	}
	var children []*child
	for i := range 5 {
		c := &child{cmd: exec.Command(os.Args[0], "-test.run=^TestHelperQuotaEnsure$", "-test.count=1")}
		c.cmd.Env = append(os.Environ(), "DEVHOST_QUOTA_DIR="+dir, fmt.Sprintf("DEVHOST_QUOTA_NAME=q%d", i))
		c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
		require.NoError(t, c.cmd.Start())
		children = append(children, c)
	}
	refused := 0
	for _, c := range children {
		require.NoError(t, c.cmd.Wait(), c.out.String())
		if strings.Contains(c.out.String(), "ENSURE-ERROR:") {
			assert.Contains(t, c.out.String(), "access.max_containers_per_user")
			refused++
		}
	}
	h, _ := testHostAt(t, dir)
	all, err := h.Reg.LoadAll()
	var de *diag.Error
	if err != nil {
		require.ErrorAs(t, err, &de)
	}
	var names []string
	for _, c := range all {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	assert.Len(t, names, 2, "registered: %v", names)
	assert.Equal(t, 3, refused)
}

// TestValidateHostNamesAliasesAndServerNames: a container may not take a
// name the host resolves (built-in, its own, configured), have more
// aliases than a certificate holds, or a server name nginx cannot hash.
func TestValidateHostNamesAliasesAndServerNames(t *testing.T) {
	h, fr := testHost(t)
	h.Cfg.Access.ReservedNames = []string{"db01.internal"}
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprintf("a%d", i)
	}
	long := strings.Repeat("x", 40)
	tests := []struct {
		name    string
		aliases []string
		bucket  int
		want    string
	}{
		{"nixos", nil, 128, "Reserved container name"},
		{"wpad", nil, 128, "Reserved container name"},
		{"metadata", nil, 128, "Reserved container name"},
		{"dev", nil, 128, "Reserved container name"}, // dev.example.com
		{"db01", nil, 128, "Reserved container name"},
		{"shop", many, 128, "Too many aliases"},
		{"shop", []string{long}, 64, "Server name too long for nginx"},
		{"shop", nil, 16, "Server name too long for nginx"},
	}
	if hn, err := os.Hostname(); err == nil && len(hn) <= 11 && !strings.Contains(hn, ".") {
		tests = append(tests, struct {
			name    string
			aliases []string
			bucket  int
			want    string
		}{strings.ToLower(hn), nil, 128, "Reserved container name"})
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.want, func(t *testing.T) {
			h.Cfg.Nginx.ServerNamesHashBucketSize = tt.bucket
			err := h.Validate(context.Background(), &EnsureRequest{Name: tt.name, Aliases: tt.aliases,
				Channel: "https://example.org/c.tar.xz", Caller: alice}, "provision.nix")
			var de *diag.Error
			require.ErrorAs(t, err, &de)
			var sums []string
			for _, d := range de.Diags {
				sums = append(sums, d.Summary)
			}
			assert.Contains(t, sums, tt.want)
		})
	}
	h.Cfg.Nginx.ServerNamesHashBucketSize = 128
	ok := many[:99]
	ok[0] = strings.Repeat("y", 63)
	assert.NoError(t, h.Validate(context.Background(), &EnsureRequest{Name: "shop-review", Aliases: ok,
		Channel: "https://example.org/c.tar.xz", Caller: alice}, "provision.nix"),
		"99 aliases and the longest alias fit with the module's default bucket size for dev.example.com")
	assert.Empty(t, fr.calls)
}
