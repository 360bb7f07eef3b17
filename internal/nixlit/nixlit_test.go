package nixlit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostile are inputs chosen to break a naive escaper.
var hostile = []string{
	"", "plain", `"`, `\`, `\\`, `\"`, `""`, "${", "${x}", "$${x}", "$", "$$", `$"`, `$\`, `$\{`,
	`\${x}`, "''", "'''", "''${x}", "''\\n", "a\nb", "\r", "\r\n", "a\rb", "\t", "\n\n",
	"}", "{", "${ builtins.abort \"pwned\" }", `" + builtins.toString 1 + "`,
	"\x01\x02\x1b[31m\x7f", "ünïcödé ✓ 🎉", "\xff\xfe", "a\xc3", "\xed\xa0\x80", "é\xffé",
	"/nix/store", "./relative", "<nixpkgs>", "#comment", "/* c */", "x = 1;", "\\u0041",
	"${\"${\"x\"}\"}", "$\n{", "\\\n", `\n`, `\t`, `\r`,
}

// alphabet for generated inputs: every byte that matters to the lexer,
// multi-byte UTF-8 and invalid bytes.
var alphabet = []string{"\\", "\"", "$", "{", "}", "'", "\n", "\r", "\t", "a", " ", "é", "🎉", "\xff", "\x01", "\x7f", "/"}

func generated(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		for range r.IntN(24) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		out[i] = b.String()
	}
	return out
}

// decodeLiteral is a model of the Nix lexer for a double-quoted string:
// it returns the bytes the literal denotes, or an error for anything that
// would not be one plain string (an interpolation, an early quote).
func decodeLiteral(lit string) (string, error) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", errors.New("not quoted")
	}
	body := lit[1 : len(lit)-1]
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '\\':
			if i+1 == len(body) {
				return "", errors.New("escapes the closing quote")
			}
			i++
			switch body[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(body[i])
			}
		case c == '"':
			return "", fmt.Errorf("unescaped quote at %d", i)
		case c == '$' && i+1 < len(body) && body[i+1] == '{':
			return "", fmt.Errorf("interpolation at %d", i)
		case c == '\r':
			return "", errors.New("raw CR (the lexer would turn it into LF)")
		case c == 0:
			return "", errors.New("NUL")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func TestStringModel(t *testing.T) {
	for _, s := range append(append([]string{}, hostile...), generated(2000)...) {
		lit, err := String(s)
		require.NoError(t, err, "%q", s)
		got, err := decodeLiteral(lit)
		require.NoError(t, err, "input %q literal %s", s, lit)
		assert.Equal(t, s, got)
		assert.NotContains(t, lit, "\n", "literal stays on one line")
	}
}

func TestNUL(t *testing.T) {
	for _, s := range []string{"\x00", "a\x00b", "${\x00"} {
		_, err := String(s)
		require.ErrorIs(t, err, ErrNUL)
		_, err = AttrName(s)
		require.ErrorIs(t, err, ErrNUL)
		_, err = StringList([]string{"ok", s})
		require.ErrorIs(t, err, ErrNUL)
	}
	_, err := Path("/a\x00b")
	require.ErrorIs(t, err, ErrNUL)
}

func TestAttrName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"shop", "shop"},
		{"_x", "_x"},
		{"a-b'c_9", "a-b'c_9"},
		{"dev.example.com", `"dev.example.com"`},
		{"9abc", `"9abc"`},
		{"-a", `"-a"`},
		{"'a", `"'a"`},
		{"", `""`},
		{"if", `"if"`},
		{"or", `"or"`},
		{"inherit", `"inherit"`},
		{"true", "true"},
		{"10.233.0.2", `"10.233.0.2"`},
		{"${x}", `"\${x}"`},
		{"é", `"é"`},
	}
	for _, tt := range tests {
		got, err := AttrName(tt.in)
		require.NoError(t, err)
		assert.Equal(t, tt.want, got, "AttrName(%q)", tt.in)
	}
}

func TestPath(t *testing.T) {
	got, err := Path("/var/lib/devhost/generated")
	require.NoError(t, err)
	assert.Equal(t, `"/var/lib/devhost/generated"`, got)
	got, err = Path("/srv/with space/${x}")
	require.NoError(t, err)
	assert.Equal(t, `"/srv/with space/\${x}"`, got)
	for _, bad := range []string{"", "relative", "./x", "/a/../b", "/a/", "/a//b", "~/x"} {
		_, err := Path(bad)
		assert.Error(t, err, "Path(%q)", bad)
	}
}

func TestStringList(t *testing.T) {
	got, err := StringList(nil)
	require.NoError(t, err)
	assert.Equal(t, "[ ]", got)
	got, err = StringList([]string{"a", `"`})
	require.NoError(t, err)
	assert.Equal(t, `[ "a" "\"" ]`, got)
	assert.Equal(t, "true", Bool(true))
	assert.Equal(t, "false", Bool(false))
}

// nixEval evaluates the Nix expression in src with nix-instantiate and
// decodes its JSON result into v. It skips the test when nix-instantiate is
// not installed.
func nixEval(t *testing.T, src string, v any) {
	t.Helper()
	bin, err := exec.LookPath("nix-instantiate")
	if err != nil {
		t.Skip("nix-instantiate not found in PATH: install Nix to run the round-trip tests against the real lexer")
	}
	f := filepath.Join(t.TempDir(), "expr.nix")
	require.NoError(t, os.WriteFile(f, []byte(src), 0o600))
	cmd := exec.CommandContext(context.Background(), bin, "--eval", "--strict", "--json", f)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "nix-instantiate: %s", stderr.String())
	require.NoError(t, json.Unmarshal(out, v))
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestStringRoundTripNix evaluates every escaped input with the real Nix and
// compares the bytes (by SHA-256 and length, so invalid UTF-8 is compared
// exactly too) and, for valid UTF-8, the JSON value.
func TestStringRoundTripNix(t *testing.T) {
	inputs := append(append([]string{}, hostile...), generated(1000)...)
	inputs = append(inputs,
		strings.Repeat(`${"\'`, 50000),             // 250 kB of hostile text
		strings.Repeat("x", 1<<20),                 // 1 MiB
		strings.Repeat("é\n", 10000)+"\xff"+"${x}", // long, mixed
	)
	var src, attrs strings.Builder
	src.WriteString("let xs = [\n")
	attrs.WriteString("[\n")
	for _, s := range inputs {
		lit, err := String(s)
		require.NoError(t, err)
		src.WriteString(lit)
		src.WriteByte('\n')
		name, err := AttrName(s)
		require.NoError(t, err)
		fmt.Fprintf(&attrs, "{ %s = null; }\n", name)
	}
	src.WriteString("]; attrs = ")
	src.WriteString(attrs.String())
	src.WriteString(`]; h = s: [ (builtins.hashString "sha256" s) (builtins.stringLength s) ];
in {
  hashes = map h xs;
  names = map (a: h (builtins.head (builtins.attrNames a))) attrs;
  values = xs;
}`)
	var res struct {
		Hashes [][2]any
		Names  [][2]any
		Values []string
	}
	nixEval(t, src.String(), &res)
	require.Len(t, res.Hashes, len(inputs))
	require.Len(t, res.Names, len(inputs))
	for i, s := range inputs {
		want := [2]any{sha(s), float64(len(s))}
		assert.Equal(t, want, res.Hashes[i], "string literal of %.60q", s)
		assert.Equal(t, want, res.Names[i], "attribute name of %.60q", s)
		if utf8.ValidString(s) {
			assert.Equal(t, s, res.Values[i], "JSON value of %.60q", s)
		}
	}
}

func TestPathNix(t *testing.T) {
	p := "/var/lib/devhost/with space/${x}/ü"
	lit, err := Path(p)
	require.NoError(t, err)
	var res []string
	nixEval(t, fmt.Sprintf("[ (builtins.typeOf %s) %s ]", lit, lit), &res)
	assert.Equal(t, []string{"string", p}, res)
}

func FuzzString(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lit, err := String(s)
		if strings.IndexByte(s, 0) >= 0 {
			if !errors.Is(err, ErrNUL) {
				t.Fatalf("String(%q) = %q, %v; want ErrNUL", s, lit, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("String(%q): %v", s, err)
		}
		got, err := decodeLiteral(lit)
		if err != nil || got != s {
			t.Fatalf("String(%q) = %s decodes to %q, %v", s, lit, got, err)
		}
		name, err := AttrName(s)
		if err != nil {
			t.Fatal(err)
		}
		if name != lit && !IsIdentifier(name) {
			t.Fatalf("AttrName(%q) = %s: neither identifier nor literal", s, name)
		}
	})
}

func TestRelPath(t *testing.T) {
	got, err := RelPath("containers/shop-1.nix")
	require.NoError(t, err)
	assert.Equal(t, "./containers/shop-1.nix", got)
	for _, bad := range []string{"", "/abs", "a//b", "a/../b", "./a", "a b", "a/${x}", "é", "a/"} {
		_, err := RelPath(bad)
		assert.Error(t, err, "RelPath(%q)", bad)
	}
	var res []string
	nixEval(t, fmt.Sprintf(`[ (builtins.typeOf %s) (baseNameOf (toString %s)) ]`, got, got), &res)
	assert.Equal(t, []string{"path", "shop-1.nix"}, res)
}
