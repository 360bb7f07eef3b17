package codesync

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustRules(t *testing.T, src string) *Rules {
	t.Helper()
	rs, err := ParseRules(".gitignore", strings.NewReader(src))
	require.NoError(t, err)
	return rs
}

func TestExcluded(t *testing.T) {
	rs := mustRules(t, `# comment
*.pyc
/build
node_modules/
docs/*.html
!docs/keep.html
**/tmp/cache
logs/**
a/**/z
\#literal
trailing   
`)
	tests := []struct {
		path string
		dir  bool
		want bool
	}{
		{".git", true, true},
		{".git/config", false, true},
		{"sub/.git", false, true}, // a submodule's .git file
		{"x.pyc", false, true},
		{"deep/er/x.pyc", false, true},
		{"x.py", false, false},
		{"build", true, true},
		{"build/out.o", false, true},
		{"src/build", true, false}, // anchored
		{"node_modules", true, true},
		{"web/node_modules/x.js", false, true},
		{"node_modules", false, false}, // a file: the pattern is for directories
		{"docs/a.html", false, true},
		{"docs/keep.html", false, false},
		{"docs/sub/a.html", false, false}, // * does not cross /
		{"tmp/cache", true, true},
		{"x/y/tmp/cache", true, true},
		{"logs", true, false}, // logs/** is what is inside
		{"logs/a/b", false, true},
		{"a/z", false, true},
		{"a/b/c/z", false, true},
		{"#literal", false, true},
		{"trailing", false, true},
		{"comment", false, false},
		{"", true, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, rs.Excluded(tt.path, tt.dir), "%s (dir %v)", tt.path, tt.dir)
	}
	var none *Rules
	assert.True(t, none.Excluded("a/.git/HEAD", false))
	assert.False(t, none.Excluded("a/b", false))
}

// A file in an excluded directory cannot be re-included, as in git.
func TestExcludedDirectoryWins(t *testing.T) {
	rs := mustRules(t, "out/\n!out/keep\n")
	assert.True(t, rs.Excluded("out/keep", false))
}

func TestParseRulesRefuses(t *testing.T) {
	tests := []struct{ src, want string }{
		{"ok\n[abc\n", ".gitignore:2: pattern \"[abc\": malformed"},
		{"a/**/b/**/c/**/d/**/e/**/f\n", ".gitignore:1: pattern \"a/**/b/**/c/**/d/**/e/**/f\" has more than 4 ** parts"},
		{"\\ lead\n", "starts or ends with a space"},
		{"a\x00b\n", ".gitignore:1: NUL byte"},
		{strings.Repeat("x\n", maxRules+1), ".gitignore:1001: more than 1000 patterns"},
		{strings.Repeat("#", maxRulesBytes+1), "more than 64 KiB"},
	}
	for _, tt := range tests {
		_, err := ParseRules(".gitignore", strings.NewReader(tt.src))
		var re *RulesError
		require.ErrorAs(t, err, &re, tt.want)
		assert.Contains(t, err.Error(), tt.want)
	}
}

func TestRsyncFilters(t *testing.T) {
	rs := mustRules(t, "*.pyc\n!keep.pyc\n/build/\n**/cache\nfoo\\*bar\nplain\\ name\n")
	assert.Equal(t, []string{
		"- .git",
		`- plain name`,
		`- foo\*bar`,
		"- /**/cache", "- /cache",
		"- /build/",
		"+ keep.pyc",
		"- *.pyc",
	}, rs.RsyncFilters())
}

// The real rsync, given RsyncFilters, copies exactly the paths Excluded
// lets through: the watcher and the transfer agree.
func TestRsyncAgreesWithExcluded(t *testing.T) {
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		t.Skip("rsync not installed")
	}
	src := t.TempDir()
	files := []string{
		".git/config", "sub/.git", "x.pyc", "d/keep.pyc", "d/y.pyc", "build/o", "src/build/o.go",
		"node_modules/m.go", "w/node_modules/m.go", "docs/a.html", "docs/keep.html", "docs/s/a.html",
		"tmp/cache/c.go", "q/tmp/cache/c.go", "logs/x.go", "logs/important", "a/z", "a/b/z", "a/b/c/z",
		"data1.go", "data1", "file", "xile", "name?", "nameX", "sp ace", "lit*star", "litXstar", "main.go",
		"notes.txt", "README", "deep/er/est/v.go",
	}
	for _, f := range files {
		p := filepath.Join(src, filepath.FromSlash(f))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(f), 0o644))
	}
	for name, rules := range map[string]string{
		"patterns": `*.pyc
!keep.pyc
/build
node_modules/
docs/*.html
!docs/keep.html
**/tmp/cache
logs/**
!logs/important
a/**/z
data[0-9]
[!x]ile
name\?
sp\ ace
lit\*star
`,
		"everything but": "**\n!**/\n!*.go\n!*.txt\nlogs/\n",
	} {
		t.Run(name, func(t *testing.T) {
			rs := mustRules(t, rules)
			dst := t.TempDir()
			args := []string{"-a", "--delete"}
			for _, f := range rs.RsyncFilters() {
				args = append(args, "--filter="+f)
			}
			args = append(args, "--", src+"/", dst+"/")
			out, err := exec.Command(rsync, args...).CombinedOutput()
			require.NoError(t, err, "%s", out)
			want := tree(t, src, rs)
			got := tree(t, dst, nil)
			assert.Equal(t, want, got)
			assert.NotEmpty(t, got)
			assert.Less(t, len(got), len(tree(t, src, nil))-1, "the rules left something out")
		})
	}
}

// tree lists the files and directories below root, leaving out what rs
// excludes (rs nil: everything).
func tree(t *testing.T, root string, rs *Rules) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator)))
		if rs != nil && rs.Excluded(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	}))
	sort.Strings(out)
	return out
}
