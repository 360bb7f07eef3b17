package channel

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/names"
)

func TestParseAccepts(t *testing.T) {
	for _, s := range []string{
		"https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz",
		"https://hydra.flyingcircus.io",
		"https://nixos.org/channels/nixos-20.09",
		"https://192.0.2.7/c~1/nixexprs.tar.xz",
		"file:///nix/var/nix/profiles/per-user/root/channels/nixos",
		"file:///srv/channels/nixos-20.09_x",
	} {
		c, err := Parse(s)
		require.NoError(t, err, s)
		assert.Equal(t, s, c.String(), "the URL is kept as written")
	}
}

// hostile are channels that once meant more than one place to Nix or to a
// prefix check, with what the refusal must say.
var hostile = []struct{ in, why string }{
	{"file:///home/me/w/x=/../../etc", `contains '='`},
	{"file:///tmp/x=/etc", `contains '='`},
	{"https://h.example/x=/etc", `contains '='`},
	{"file:///srv/channels/nixos?/../../../../home/me/evil", `contains '?'`},
	{"file:///srv/channels/nixos#/../../../../home/me/evil", `contains '#'`},
	{"https://hydra.flyingcircus.io?x=1", `host contains '?'`},
	{"https://hydra.flyingcircus.io#x", `host contains '#'`},
	{"file:///srv/channels/%2e%2e/%2e%2e/etc", `contains '%'`},
	{"file:///srv/channels/../../etc", `".." path segment`},
	{"file:///srv/channels/./nixos", `"." path segment`},
	{"https://h.example/build/../../x", `".." path segment`},
	{"file://h.example/etc", "names no host"},
	{"file://localhost/etc", "names no host"},
	{"file:////etc", "empty path segment"},
	{"file:///", "whole file system"},
	{"file://", "followed by an absolute path"},
	{"file:///srv/channels/", "ends with '/'"},
	{"https://h.example/", "ends with '/'"},
	{"https://user:pw@h.example/x", "user information"},
	{"https://h.example@evil.example/x", "user information"},
	{"https://h.example:443/x", "port"},
	{"https://h.example:/x", "port"},
	{"https://", "no host"},
	{"https:///x", "no host"},
	{"https://H.example/x", "upper-case"},
	{"https://h_x.example/x", "underscore"},
	{"https://-h.example/x", "hyphen"},
	{"HTTPS://h.example/x", "only https:// and file://"},
	{"http://h.example/x", "only https:// and file://"},
	{"ftp://h.example/x", "only https:// and file://"},
	{"channel:nixos-20.09", "only https:// and file://"},
	{"file:/etc", "only https:// and file://"},
	{"/etc", "only https:// and file://"},
	{"", "only https:// and file://"},
	{`https://h.example/"; rm -rf / #`, `contains '"'`},
	{"https://h.example/${builtins.abort}", `contains '$'`},
	{"https://h.example/a b", `contains ' '`},
	{"https://h.example/x\n", `contains '\n'`},
	{"file:///srv/c\x00/x", `contains '\x00'`},
	{"https://h.example/`id`", "contains '`'"},
	{`https://h.example/\x`, `contains '\\'`},
	{"https://h.example/ä", `contains 'ä'`},
	{"https://h.example/a;b&c", `contains ';'`},
	{"https://h.example/" + strings.Repeat("a", MaxLen), "longer than 2048"},
}

func TestParseRefusesHostileChannels(t *testing.T) {
	for _, tt := range hostile {
		_, err := Parse(tt.in)
		require.Error(t, err, tt.in)
		assert.ErrorIs(t, err, names.ErrInvalid, tt.in)
		assert.ErrorContains(t, err, tt.why, tt.in)
		var ne *names.Error
		require.True(t, errors.As(err, &ne))
		assert.Equal(t, Hint, ne.Hint, "every refusal says what to use")
	}
}

func TestParsePrefix(t *testing.T) {
	for _, s := range []string{"https://", "https://hydra.flyingcircus.io", "https://hydra.flyingcircus.io/build/", "file:///nix/var/nix/profiles/per-user/root/channels/", "file:///srv/channels"} {
		p, err := ParsePrefix(s)
		require.NoError(t, err, s)
		assert.Equal(t, s, p.String())
	}
	for s, why := range map[string]string{
		"file:///":             "every directory",
		"file://":              "every directory",
		"ftp://x/":             "only https:// and file://",
		"https://h.example//":  "ends with '/'",
		"file:///srv/x=/etc/":  `contains '='`,
		"https://h.example:8/": "port",
	} {
		_, err := ParsePrefix(s)
		assert.ErrorContains(t, err, why, s)
		assert.ErrorContains(t, err, "channel prefix", s)
	}
}

func TestPolicyHTTPS(t *testing.T) {
	mustPrefixes := func(ss ...string) []Prefix {
		var out []Prefix
		for _, s := range ss {
			p, err := ParsePrefix(s)
			require.NoError(t, err)
			out = append(out, p)
		}
		return out
	}
	tests := []struct {
		prefixes []string
		channel  string
		why      string // "" when allowed
	}{
		{nil, "https://example.org/nixexprs.tar.xz", ""},
		{[]string{"https://"}, "https://example.org/nixexprs.tar.xz", ""},
		{[]string{"https://hydra.flyingcircus.io/build/"}, "https://hydra.flyingcircus.io/build/1/download/1/nixexprs.tar.xz", ""},
		{[]string{"https://hydra.flyingcircus.io"}, "https://hydra.flyingcircus.io", ""},
		{[]string{"https://hydra.flyingcircus.io/build"}, "https://hydra.flyingcircus.io/buildx/1", "none of this devhost's allowed prefixes"},
		{[]string{"https://hydra.flyingcircus.io"}, "https://hydra.flyingcircus.io.evil.example/nixexprs.tar.xz", "none of this devhost's allowed prefixes"},
		{[]string{"https://hydra.flyingcircus.io"}, "https://evil.example/hydra.flyingcircus.io", "none of this devhost's allowed prefixes"},
		{[]string{"file:///srv/channels/"}, "https://example.org/x", "allows no https:// channels"},
		{nil, "file:///srv/channels/nixos", "allows no file:// channels"},
	}
	for _, tt := range tests {
		c, err := Parse(tt.channel)
		require.NoError(t, err)
		r, err := Policy{Prefixes: mustPrefixes(tt.prefixes...)}.Check(c)
		if tt.why != "" {
			assert.ErrorContains(t, err, tt.why, "%v %s", tt.prefixes, tt.channel)
			continue
		}
		require.NoError(t, err, "%v %s", tt.prefixes, tt.channel)
		assert.Equal(t, []string{"-I", "nixpkgs=" + tt.channel, "-I", tt.channel, "--option", "allowed-uris", tt.channel}, r.NixArgs())
	}
	_, err := Policy{}.Check(Channel{})
	assert.ErrorContains(t, err, "no channel")
}

// FuzzChannel: whatever Parse accepts is one place to Nix. Its URL is the
// input itself (there is no second spelling), its search-path entries
// hold no '=' beyond "nixpkgs=", its path has no dot segment and no URL
// delimiter, and a channel an allowed prefix covers stays inside that
// prefix's directory once the path is cleaned as the kernel would.
func FuzzChannel(f *testing.F) {
	for _, tt := range hostile {
		f.Add(tt.in)
	}
	f.Add("https://hydra.flyingcircus.io/build/1/download/1/nixexprs.tar.xz")
	f.Add("file:///srv/channels/nixos")
	f.Add("file:///srv/channels/a.b/..c/~d")
	prefix, err := ParsePrefix("file:///srv/channels/")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		if c.String() != s {
			t.Fatalf("Parse(%q).String() = %q", s, c.String())
		}
		if again, err := Parse(c.String()); err != nil || again != c {
			t.Fatalf("%q does not parse back to itself: %v", s, err)
		}
		r := Resolved{ch: c, loc: c.String()}
		if c.Kind() == File {
			r.loc = c.Path() // what Check yields for a canonical directory
			if filepath.Clean(c.Path()) != c.Path() || !filepath.IsAbs(c.Path()) || c.Path() == "/" {
				t.Fatalf("%q: path %q is not absolute and clean", s, c.Path())
			}
		}
		if strings.ContainsAny(s, "=?#%@\"'`$\\ \t\n\r{}<>|*;&\x00") {
			t.Fatalf("accepted %q", s)
		}
		args := r.NixArgs()
		if len(args) < 4 || args[0] != "-I" || args[2] != "-I" {
			t.Fatalf("%q: argv %q", s, args)
		}
		if name, loc, _ := strings.Cut(args[1], "="); name != "nixpkgs" || strings.Contains(loc, "=") || strings.Contains(args[3], "=") {
			t.Fatalf("%q: search path %q has a second entry", s, args[:4])
		}
		if prefix.covers(c) {
			if rel, err := filepath.Rel("/srv/channels", filepath.Clean(c.Path())); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
				t.Fatalf("%q is covered by %s but lies outside it", s, prefix)
			}
		}
	})
}
