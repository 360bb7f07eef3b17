package lifecycle

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/basicauth"
)

// htpasswd reads the container's password file: its user and hash.
func htpasswd(t *testing.T, h *Host, name string) (user, hash string) {
	t.Helper()
	data, err := os.ReadFile(h.basicAuthPath(name))
	require.NoError(t, err)
	line, ok := strings.CutSuffix(string(data), "\n")
	require.True(t, ok, "one line")
	user, hash, ok = strings.Cut(line, ":")
	require.True(t, ok, "user:hash")
	return user, hash
}

// liveSet is the generated set as the last rebuild left it.
func liveSet(t *testing.T, h *Host, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(h.Cfg.GeneratedDir, "containers", name+".nix"))
	require.NoError(t, err)
	return string(data)
}

func TestProtectAndOff(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	require.Equal(t, 1, fr.count("nixos-rebuild"))
	file := h.basicAuthPath("shop")

	res, err := h.Protect(ctx, "shop", DefaultProtectUser, alice)
	require.NoError(t, err)
	assert.Len(t, res.Password, basicauth.PasswordLen)
	assert.True(t, res.Apply.Rebuilt, "the vhost changes: one rebuild")
	assert.Equal(t, 2, fr.count("nixos-rebuild"))
	c, err := h.Reg.Get("shop")
	require.NoError(t, err)
	assert.Equal(t, "preview", c.ProtectUser)
	user, hash := htpasswd(t, h, "shop")
	assert.Equal(t, "preview", user)
	assert.Regexp(t, `^\$6\$`, hash)
	assert.Contains(t, liveSet(t, h, "shop"), `basicAuthFile = "`+file+`"`)
	entry, err := os.ReadFile(h.Reg.Path("shop"))
	require.NoError(t, err)
	assert.NotContains(t, string(entry), hash, "the hash is not in the registry")
	assert.NotContains(t, string(entry), res.Password)

	// Again, with another user: a new password, no rebuild.
	res2, err := h.Protect(ctx, "shop", "customer", alice)
	require.NoError(t, err)
	assert.NotEqual(t, res.Password, res2.Password)
	assert.False(t, res2.Apply.Rebuilt)
	assert.Equal(t, 2, fr.count("nixos-rebuild"))
	user2, hash2 := htpasswd(t, h, "shop")
	assert.Equal(t, "customer", user2)
	assert.NotEqual(t, hash, hash2)

	off, err := h.Unprotect(ctx, "shop", alice)
	require.NoError(t, err)
	assert.Empty(t, off.Password)
	assert.True(t, off.Apply.Rebuilt)
	assert.Equal(t, 3, fr.count("nixos-rebuild"))
	c, err = h.Reg.Get("shop")
	require.NoError(t, err)
	assert.Empty(t, c.ProtectUser)
	assert.NoFileExists(t, file)
	assert.NotContains(t, liveSet(t, h, "shop"), "basicAuthFile")

	// Off again: nothing to do.
	_, err = h.Unprotect(ctx, "shop", alice)
	require.NoError(t, err)
	assert.Equal(t, 3, fr.count("nixos-rebuild"))
}

func TestProtectRefuses(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	bob := Caller{User: "bob", Groups: []string{"users"}}
	outsider := Caller{User: "eve", Groups: []string{"eve"}}
	admin := Caller{User: "root2", Groups: []string{h.Cfg.Access.AdminGroup}}

	for _, tc := range []struct {
		name   string
		target string
		user   string
		caller Caller
		want   error
		text   string
	}{
		{"another user's container", "shop", "preview", bob, ErrDenied, `may not change`},
		{"not in the groups", "shop", "preview", outsider, ErrDenied, "may not change containers"},
		{"missing container", "nope", "preview", alice, nil, "nope"},
		{"bad user", "shop", "a:b", alice, nil, "user name"},
		{"empty user", "shop", "", alice, nil, "user name"},
		{"bad name", "../x", "preview", alice, nil, "container name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Protect(ctx, tc.target, tc.user, tc.caller)
			require.Error(t, err)
			if tc.want != nil {
				assert.ErrorIs(t, err, tc.want)
			}
			assert.Contains(t, err.Error(), tc.text)
			assert.NoFileExists(t, h.basicAuthPath("shop"))
			c, err := h.Reg.Get("shop")
			require.NoError(t, err)
			assert.Empty(t, c.ProtectUser)
		})
	}
	_, err = h.Unprotect(ctx, "shop", bob)
	require.ErrorIs(t, err, ErrDenied)
	assert.Equal(t, 1, fr.count("nixos-rebuild"))

	// An admin may.
	res, err := h.Protect(ctx, "shop", "preview", admin)
	require.NoError(t, err)
	assert.NotEmpty(t, res.Password)
}

// A failed rebuild rolls the entry back to unprotected: the password file
// goes with it and no password is handed out.
func TestProtectRebuildFailure(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	fr.fail = map[string]error{"nixos-rebuild": errors.New("nginx config broken")}
	res, err := h.Protect(ctx, "shop", "preview", alice)
	var re *RebuildError
	require.ErrorAs(t, err, &re)
	assert.Nil(t, res)
	c, err := h.Reg.Get("shop")
	require.NoError(t, err)
	assert.Empty(t, c.ProtectUser, "rolled back")
	assert.NoFileExists(t, h.basicAuthPath("shop"))

	// Protected for real, an --off whose rebuild fails keeps the file
	// the host still asks for.
	fr.fail = nil
	_, err = h.Protect(ctx, "shop", "preview", alice)
	require.NoError(t, err)
	fr.fail = map[string]error{"nixos-rebuild": errors.New("nginx config broken")}
	_, err = h.Unprotect(ctx, "shop", alice)
	require.ErrorAs(t, err, &re)
	c, err = h.Reg.Get("shop")
	require.NoError(t, err)
	assert.Equal(t, "preview", c.ProtectUser, "rolled back")
	assert.FileExists(t, h.basicAuthPath("shop"))
}

// A protect while an ensure of the same container builds must survive
// the ensure's commit, as keep does.
func TestProtectDuringEnsureIsNotLost(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	req := EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice}
	_, err := h.Ensure(ctx, req)
	require.NoError(t, err)
	done := make(chan error, 1)
	fr.onBuild = func() {
		go func() {
			_, err := h.Protect(ctx, "shop", "preview", alice)
			done <- err
		}()
		select {
		case err := <-done:
			done <- err
		case <-time.After(300 * time.Millisecond):
		}
	}
	req.Force = true
	_, err = h.Ensure(ctx, req)
	require.NoError(t, err)
	require.NoError(t, <-done)
	c, err := h.Reg.Get("shop")
	require.NoError(t, err)
	assert.Equal(t, "preview", c.ProtectUser, "the protection set during the ensure was lost")
	assert.FileExists(t, h.basicAuthPath("shop"))
}

func TestDestroyRemovesPasswordFile(t *testing.T) {
	h, _ := testHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	_, err = h.Protect(ctx, "shop", "preview", alice)
	require.NoError(t, err)
	require.FileExists(t, h.basicAuthPath("shop"))
	_, err = h.Destroy(ctx, "shop", alice)
	require.NoError(t, err)
	assert.NoFileExists(t, h.basicAuthPath("shop"))
}
