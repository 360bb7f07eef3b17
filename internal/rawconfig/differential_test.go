package rawconfig

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// pythonScript reads files the way batou does and prints CPython's view.
const pythonScript = "testdata/configparser_json.py"

// python3 returns the interpreter's path or skips the test.
func python3(t testing.TB) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH: skipping the comparison with CPython's configparser (install python3 to run it)")
	}
	return py
}

// repoRoot is the directory holding go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "go.mod not found above the test directory")
		dir = parent
	}
}

// corpus lists every environment.cfg of the shared fixtures (../shared
// beside the clone), the bundled example project and testdata/cases/*.cfg.
func corpus(t testing.TB) []string {
	t.Helper()
	root := repoRoot(t)
	var files []string
	dirs := []string{
		filepath.Join(root, "..", "shared", "fixtures", "batou-environments"),
		filepath.Join(root, "..", "shared", "fixtures", "devhost-projects"),
		filepath.Join(root, "examples"),
	}
	for _, dir := range dirs {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			t.Logf("corpus: %s does not exist, not compared", dir)
			continue
		}
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && d.Name() == "environment.cfg" {
				files = append(files, path)
			}
			return nil
		})
		require.NoError(t, err)
	}
	cases, err := filepath.Glob(filepath.Join("testdata", "cases", "*.cfg"))
	require.NoError(t, err)
	require.NotEmpty(t, cases, "testdata/cases/*.cfg missing")
	files = append(files, cases...)
	sort.Strings(files)
	return files
}

// goResult renders Parse's outcome in the script's JSON shape.
func goResult(filename string, src []byte) map[string]any {
	f, err := Parse(filename, src)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return map[string]any{"error": e.PythonClass}
		}
		return map[string]any{"error": "Go: " + err.Error()}
	}
	sections := map[string]any{}
	for name, opts := range f.Map() {
		m := map[string]any{}
		for k, v := range opts {
			m[k] = v
		}
		sections[name] = m
	}
	return map[string]any{"sections": sections}
}

// runPython reads files with CPython in one process and returns the
// decoded results and the raw JSON lines, one per file.
func runPython(t *testing.T, py string, files []string) ([]map[string]any, [][]byte) {
	t.Helper()
	cmd := exec.Command(py, append([]string{pythonScript}, files...)...)
	// batou runs on a UTF-8 locale; make sure CPython decodes UTF-8 too.
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "PYTHONUTF8=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "python3 %s: %s", pythonScript, stderr.String())

	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	var results []map[string]any
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		results = append(results, m)
	}
	require.NoError(t, sc.Err())
	require.Len(t, results, len(files))
	lines := bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n"))
	require.Len(t, lines, len(files))
	return results, lines
}

// TestDifferentialDecodeChunks checks files that are not UTF-8 around
// CPython's 8192-byte decoding chunks: a duplicate section on a line CPython
// reads before it decodes the bad chunk wins over UnicodeDecodeError. The
// cases vary where the duplicate's line ends (and how: "\n", "\r", "\r\n",
// "\r" followed by a multi-byte character that straddles the chunk
// boundary) and where the bad bytes are.
func TestDifferentialDecodeChunks(t *testing.T) {
	server := startPyServer(t, python3(t))
	terms := []string{"\n", "\r", "\r\n"}
	dupEnds := []string{"\n", "\r", "\r\n", "\r\u00e9", "\r\u20ac", "\r\U0001F600", "\n\u20ac"}
	bads := []string{"\xff", "\xe2\x82\n", "\xe2", "\xc3(", "\xed\xa0\x80", "\xf0\x9f\x98"}
	seen := map[string]int{}
	for pad := chunkSize - 12; pad <= chunkSize+2; pad++ {
		for _, term := range terms {
			for _, dupEnd := range dupEnds {
				for fill := 0; fill <= 1; fill++ {
					for _, bad := range bads {
						var b bytes.Buffer
						b.WriteString("[s]\n#")
						b.WriteString(strings.Repeat("x", pad))
						b.WriteString(term)
						b.WriteString("[s]")
						b.WriteString(dupEnd)
						b.WriteString(strings.Repeat("y", fill))
						b.WriteString(bad)
						src := b.Bytes()
						want, err := server.Query(src)
						require.NoError(t, err)
						got := string(goJSON("c.cfg", src))
						require.Equal(t, string(want), got, "%d %q %q %d %q", pad, term, dupEnd, fill, bad)
						seen[got]++
					}
				}
			}
		}
	}
	// Both outcomes must occur, or the cases miss the boundary.
	require.Positive(t, seen[`{"error": "DuplicateSectionError"}`])
	require.Positive(t, seen[`{"error": "UnicodeDecodeError"}`])
	t.Logf("%v", seen)
}

// goJSON is what `devhost debug cfg` prints for src.
func goJSON(filename string, src []byte) []byte {
	f, err := Parse(filename, src)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return ErrorJSON(e.PythonClass)
		}
		return ErrorJSON("Go: " + err.Error())
	}
	return f.JSON()
}

// TestDifferential runs CPython's RawConfigParser (the way batou calls it)
// and Parse over the whole corpus in one Python process and requires the
// same sections, options and values, or the same exception class.
func TestDifferential(t *testing.T) {
	py := python3(t)
	files := corpus(t)
	results, lines := runPython(t, py, files)
	errorsSeen := map[string]int{}
	for i, path := range files {
		src, err := os.ReadFile(path)
		require.NoError(t, err)
		want := results[i]
		got := goResult(path, src)
		require.Equal(t, want, got, "%s: Go and CPython disagree", path)
		// And the JSON text itself is the same, byte for byte.
		require.Equal(t, string(lines[i]), string(goJSON(path, src)), "%s: JSON text differs", path)
		if e, ok := want["error"].(string); ok {
			errorsSeen[e]++
		}
		if strings.Contains(path, "fixtures") {
			require.Contains(t, want, "sections", "%s: fixture environments must parse", path)
		}
	}
	// The corpus must exercise every way CPython rejects a file.
	for _, class := range []string{"MissingSectionHeaderError", "DuplicateSectionError", "DuplicateOptionError", "ParsingError", "UnicodeDecodeError"} {
		require.Positive(t, errorsSeen[class], "no corpus case raises %s", class)
	}
	t.Logf("%d files compared, errors by class: %v", len(files), errorsSeen)
}
