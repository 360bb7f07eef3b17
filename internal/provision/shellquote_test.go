package provision

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "''"},
		{"web", "web"},
		{"--channel", "--channel"},
		{"https://example.com/a?b=c&d", "'https://example.com/a?b=c&d'"},
		{"/srv/s-shop/x.sql", "/srv/s-shop/x.sql"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{"$(rm -rf /)", "'$(rm -rf /)'"},
		{"`id`", "'`id`'"},
		{"a\nb", "'a\nb'"},
		{"~root", "'~root'"},
		{"=x", "'=x'"},
		{"k=v", "k=v"},
		{"*", "'*'"},
		{"a;b", "'a;b'"},
		{`back\slash`, `'back\slash'`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.want, Quote(tt.in))
		})
	}
}

// TestJoinRoundTrip hands Join's output to real shells and checks that they
// split it back into exactly the original words.
func TestJoinRoundTrip(t *testing.T) {
	words := []string{
		"plain", "", "two words", "it's", `"double"`, "$HOME", "${IFS}", "$(id)", "`id`",
		"a\nb", "tab\there", "*", "?", "[a]", "~", "#comment", "a;b|c&d", "<in", ">out",
		`\`, `'\''`, "é ü 日本", "--", "-n", "!event", "{a,b}",
	}
	for _, shell := range []string{"sh", "bash", "dash"} {
		path, err := exec.LookPath(shell)
		if err != nil {
			continue
		}
		t.Run(shell, func(t *testing.T) {
			// printf '%s\0' prints each word NUL-terminated.
			script := "printf '%s\\0' " + Join(words)
			out, err := exec.Command(path, "-c", script).Output()
			require.NoError(t, err)
			got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
			assert.Equal(t, words, got)
		})
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a", "'", "a'b", "$x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := Quote(s)
		if plainWord(s) && s != "" {
			assert.Equal(t, s, q)
			return
		}
		// Outside the quotes only escaped single quotes may appear.
		assert.True(t, strings.HasPrefix(q, "'") && strings.HasSuffix(q, "'"))
		inner := strings.ReplaceAll(q[1:len(q)-1], `'\''`, "")
		assert.NotContains(t, inner, "'")
	})
}

// BenchmarkJoin quotes a typical `devhost ensure` command line.
func BenchmarkJoin(b *testing.B) {
	argv := []string{"sudo", "-n", "--", "devhost", "ensure", "3f2a9c01b7e", "--channel",
		"https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz", "--alias", "shop",
		"--ssh-key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc7V2c2zFPRMl8/gmBv1/MEldEuJau8jHjhx+2qziYs devhost:dev",
		"--root", "/home/alice/it's here", "--json"}
	b.ReportAllocs()
	for b.Loop() {
		_ = Join(argv)
	}
}
