package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/limits"
)

const sshKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGQPC30WXqaikLEy9uKsPVU6a381YNdKieYn+LJjXYLK alice@laptop"

const sharedKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGQPC30WXqaikLEy9uKsPVU6a381YNdKieYn+LJjXYLK shared:jane"

func testContainer(name string, addr string) *Container {
	return &Container{
		Name:        name,
		Owner:       "alice",
		Environment: "dev",
		Root:        "/home/alice/shop",
		ServiceUser: "s-shop",
		Channel:     "https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz",
		Aliases:     []string{"shop", "admin"},
		// The release of the channel the container was created with.
		StateVersion: "24.11",
		Address:      netip.MustParseAddr(addr),
		State:        Running,
		Created:      time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC),
		Deployed:     time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC),
		SSHKeys:      []string{sshKey},
		Labels:       map[string]string{"team": "shop"},
	}
}

func TestExampleRegistry(t *testing.T) {
	r := Open("../../examples/state")
	all, err := r.LoadAll()
	require.NoError(t, err)
	var got []string
	for _, c := range all {
		got = append(got, c.Name)
	}
	assert.Equal(t, []string{"db", "demo", "review", "web"}, got, "sorted by name")
	web := all[3]
	assert.Equal(t, []string{"shop", "admin", "api"}, web.Aliases)
	assert.Equal(t, netip.MustParseAddr("10.233.0.2"), web.Address)
	assert.Equal(t, time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), web.Deployed)
	assert.Equal(t, []string{sshKey}, web.SSHKeys)
	assert.Equal(t, Stopped, all[2].State)
	assert.True(t, all[1].Keep)
	assert.Equal(t, map[string]string{"customer": "acme", "ticket": "PL-4711"}, all[1].Labels)
}

// TestLimitsExpiryProtectRoundTrip: the optional attributes are written
// only when set, read back equal, and a change edits one value in place.
func TestLimitsExpiryProtectRoundTrip(t *testing.T) {
	r := Open(t.TempDir())
	c := testContainer("web", "10.233.0.2")
	require.NoError(t, r.Put(c))
	src, err := os.ReadFile(r.Path("web"))
	require.NoError(t, err)
	for _, a := range []string{"memory_max", "cpu_weight", "cpu_quota", "tasks_max", "expires_at", "protect_user"} {
		assert.NotContains(t, string(src), a, "unset attributes are left out of a new file")
	}
	require.NoError(t, os.WriteFile(r.Path("web"), append(src, "# limits below\n"...), 0o644))
	c.Limits = limits.Limits{MemoryMax: "2G", CPUWeight: 50, CPUQuota: "200%", TasksMax: 4096}
	c.ExpiresAt = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	c.ProtectUser = "customer"
	require.NoError(t, r.Put(c))
	got, err := r.Get("web")
	require.NoError(t, err)
	assert.Equal(t, c, got)
	src, err = os.ReadFile(r.Path("web"))
	require.NoError(t, err)
	assert.Contains(t, string(src), "# limits below\nmemory_max = \"2G\"\ncpu_weight = 50\ncpu_quota = \"200%\"\ntasks_max = 4096\nexpires_at = \"2026-11-28T09:00:00Z\"\nprotect_user = \"customer\"\n")
	_, fast := decodeFast(r.Path("web"), src)
	assert.True(t, fast, "the fast path reads what Put wrote")

	c.Limits.TasksMax = 512
	require.NoError(t, r.Put(c))
	after, err := os.ReadFile(r.Path("web"))
	require.NoError(t, err)
	assert.Equal(t, strings.Replace(string(src), "tasks_max = 4096", "tasks_max = 512", 1), string(after))
}

func TestPutGetRoundTrip(t *testing.T) {
	r := Open(t.TempDir())
	c := testContainer("web", "10.233.0.2")
	c.Created = time.Date(2026, 11, 20, 11, 0, 0, 123456789, time.FixedZone("CET", 3600))
	c.Labels = map[string]string{"team": "shop", "app.tier": "web", "a": "\"${x}\""}
	c.LastError = "nixos-rebuild failed:\nline 2 \"quoted\" ${not interpolated} %{x}"
	require.NoError(t, r.Put(c))
	got, err := r.Get("web")
	require.NoError(t, err)
	want := *c
	want.Created = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	assert.True(t, want.Created.Equal(got.Created), "RFC 3339, whole seconds")
	got.Created = want.Created
	assert.Equal(t, &want, got)

	src, err := os.ReadFile(r.Path("web"))
	require.NoError(t, err)
	assert.Contains(t, string(src), `created       = "2026-11-20T10:00:00Z"`)
	assert.Contains(t, string(src), `aliases       = ["shop", "admin"]`)
	assert.Contains(t, string(src), `labels        = { a = "\"$${x}\"", "app.tier" = "web", team = "shop" }`)
	assert.Contains(t, string(src), `state_version = "24.11"`)
}

// TestPutKeepsCommentsAndLayout: a machine edit of one attribute changes that
// attribute's value and nothing else, byte for byte.
// TestOwnerWithDot: an owner whose login name has a dot (valid on NixOS)
// is stored and read back.
func TestOwnerWithDot(t *testing.T) {
	r := Open(t.TempDir())
	c := testContainer("web", "10.233.0.2")
	c.Owner = "jane.doe"
	require.NoError(t, r.Put(c))
	got, err := r.Get("web")
	require.NoError(t, err)
	assert.Equal(t, "jane.doe", got.Owner)
	all, err := r.LoadAll()
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, "jane.doe", all[0].Owner)
}

func TestPutKeepsCommentsAndLayout(t *testing.T) {
	orig := `# web shop for the Q4 campaign -- ask alice before destroying!
name="web"
owner   =   "alice"   # the login, not the full name
  environment = "dev"
channel = "https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz"

/* aliases for the admin UI */
aliases = [
  "shop",   // storefront
  "admin",
]
address = "10.233.0.2"
state = "running" // flipped by cleanup
created = "2026-11-20T11:00:00+01:00"
deployed = "2026-11-25T09:00:00Z"
labels = {
  team = "shop"
}`
	tests := []struct {
		name   string
		edit   func(c *Container)
		before string // the text the edit replaces ...
		after  string // ... with this; "" for no change at all
	}{
		{"state", func(c *Container) { c.State = Stopped }, `state = "running"`, `state = "stopped"`},
		{"no change", func(*Container) {}, "", ""},
		{"same instant in UTC", func(c *Container) { c.Created = c.Created.UTC() }, "", ""},
		{"aliases", func(c *Container) { c.Aliases = []string{"shop", "admin", "api"} },
			"aliases = [\n  \"shop\",   // storefront\n  \"admin\",\n]", `aliases = ["shop", "admin", "api"]`},
		{"labels", func(c *Container) { c.Labels["team"] = "web" }, "labels = {\n  team = \"shop\"\n}", `labels = { team = "web" }`},
		{"append", func(c *Container) { c.Keep = true }, `labels = {` + "\n  team = \"shop\"\n}", "labels = {\n  team = \"shop\"\n}\nkeep = true\n"},
		{"share", func(c *Container) { c.SharedWith = []string{"jane", "bob"}; c.SharedKeys = []string{sharedKey} },
			`labels = {` + "\n  team = \"shop\"\n}",
			"labels = {\n  team = \"shop\"\n}\nshared_with = [\"jane\", \"bob\"]\nshared_keys = [\"" + sharedKey + "\"]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Open(t.TempDir())
			require.NoError(t, os.MkdirAll(r.Dir(), 0o755))
			require.NoError(t, os.WriteFile(r.Path("web"), []byte(orig), 0o644))
			c, err := r.Get("web")
			require.NoError(t, err)
			tt.edit(c)
			require.NoError(t, r.Put(c))
			got, err := os.ReadFile(r.Path("web"))
			require.NoError(t, err)
			want := orig
			if tt.before != "" {
				require.Equal(t, 1, strings.Count(orig, tt.before))
				want = strings.Replace(orig, tt.before, tt.after, 1)
			}
			assert.Equal(t, want, string(got))
			again, err := r.Get("web")
			require.NoError(t, err)
			assert.Equal(t, c.Created.Unix(), again.Created.Unix())
			assert.Equal(t, c.Aliases, again.Aliases)
			assert.Equal(t, c.State, again.State)
			assert.Equal(t, c.Keep, again.Keep)
			assert.Equal(t, c.Labels, again.Labels)
			assert.Equal(t, c.SharedWith, again.SharedWith)
			assert.Equal(t, c.SharedKeys, again.SharedKeys)
		})
	}
}

// An entry written before devhost recorded state versions reads as one
// without; recording it later appends the line and changes nothing else.
func TestStateVersionAddedToOldEntry(t *testing.T) {
	r := Open(t.TempDir())
	c := testContainer("web", "10.233.0.2")
	c.StateVersion = ""
	require.NoError(t, r.Put(c))
	old, err := os.ReadFile(r.Path("web"))
	require.NoError(t, err)
	// What older devhost versions wrote: no state_version line at all.
	old = regexp.MustCompile(`(?m)^state_version.*\n`).ReplaceAll(old, nil)
	require.NoError(t, os.WriteFile(r.Path("web"), old, 0o644))
	got, err := r.Get("web")
	require.NoError(t, err)
	assert.Empty(t, got.StateVersion)

	got.StateVersion = "20.09"
	require.NoError(t, r.Put(got))
	src, err := os.ReadFile(r.Path("web"))
	require.NoError(t, err)
	assert.Equal(t, string(old)+"state_version = \"20.09\"\n", string(src))
	again, err := r.Get("web")
	require.NoError(t, err)
	assert.Equal(t, "20.09", again.StateVersion)
}

func TestPutUnchangedDoesNotWrite(t *testing.T) {
	r := Open(t.TempDir())
	c := testContainer("web", "10.233.0.2")
	require.NoError(t, r.Put(c))
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(r.Path("web"), old, old))
	require.NoError(t, r.Put(c))
	fi, err := os.Stat(r.Path("web"))
	require.NoError(t, err)
	assert.True(t, fi.ModTime().Equal(old.Truncate(0)) || fi.ModTime().Unix() == old.Unix())
}

// TestPutRejectsInvalid: nothing is written for a container that could
// never be a DNS label or container name.
func TestPutRejectsInvalid(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Container)
		want string
	}{
		{"underscore name", func(c *Container) { c.Name = "my_web" }, "Invalid container name"},
		{"long name", func(c *Container) { c.Name = "abcdefghijkl" }, "at most 11"},
		{"path traversal", func(c *Container) { c.Name = "../etc" }, "Invalid container name"},
		{"digits", func(c *Container) { c.Name = "1234" }, "digits only"},
		{"localhost", func(c *Container) { c.Name = "localhost" }, "Reserved container name"},
		{"alias with dot", func(c *Container) { c.Aliases = []string{"a.b"} }, "Invalid alias"},
		{"alias upper", func(c *Container) { c.Aliases = []string{"Admin"} }, "Invalid alias"},
		{"alias too long", func(c *Container) { c.Aliases = []string{strings.Repeat("a", 64)} }, "Invalid alias"},
		{"duplicate alias", func(c *Container) { c.Aliases = []string{"a", "a"} }, "Duplicate alias"},
		{"channel quote", func(c *Container) { c.Channel = `https://x/"; rm -rf /` }, "Invalid channel"},
		{"channel http", func(c *Container) { c.Channel = "http://x/y" }, "Invalid channel"},
		{"owner", func(c *Container) { c.Owner = "Alice Smith" }, "Invalid owner"},
		{"service user", func(c *Container) { c.ServiceUser = "s shop" }, "Invalid service_user"},
		{"service user developer", func(c *Container) { c.ServiceUser = "developer" }, "Reserved service_user"},
		{"service user root", func(c *Container) { c.ServiceUser = "root" }, "Reserved service_user"},
		{"no address", func(c *Container) { c.Address = netip.Addr{} }, "Missing address"},
		{"unspecified address", func(c *Container) { c.Address = netip.IPv4Unspecified() }, "Invalid address"},
		{"state", func(c *Container) { c.State = "paused" }, "Invalid state"},
		{"no created", func(c *Container) { c.Created = time.Time{} }, "Missing creation time"},
		{"deployed before created", func(c *Container) { c.Deployed = c.Created.Add(-time.Hour) }, "Deployed before created"},
		{"ssh key newline", func(c *Container) { c.SSHKeys = []string{sshKey + "\nssh-ed25519 AAAA evil"} }, "Invalid SSH key"},
		{"ssh key options", func(c *Container) { c.SSHKeys = []string{`command="sh" ` + sshKey} }, "options"},
		{"ssh garbage", func(c *Container) { c.SSHKeys = []string{"hello"} }, "not an SSH public key"},
		{"shared user", func(c *Container) { c.SharedWith = []string{"Jane Doe"} }, "Invalid user in shared_with"},
		{"shared owner", func(c *Container) { c.SharedWith = []string{"alice"} }, "Owner in shared_with"},
		{"shared root", func(c *Container) { c.SharedWith = []string{"root"} }, "Reserved user in shared_with"},
		{"shared twice", func(c *Container) { c.SharedWith = []string{"jane", "jane"} }, "Duplicate user in shared_with"},
		{"shared too many", func(c *Container) {
			for i := range MaxShared + 1 {
				c.SharedWith = append(c.SharedWith, fmt.Sprintf("u%d", i))
			}
		}, "Too many users in shared_with"},
		{"shared key options", func(c *Container) { c.SharedKeys = []string{`command="sh" ` + sharedKey} }, "options"},
		{"shared key two lines", func(c *Container) { c.SharedKeys = []string{sharedKey + "\n" + sshKey} }, "Invalid SSH key"},
		{"label key", func(c *Container) { c.Labels = map[string]string{"a b": "c"} }, "Invalid label name"},
		{"label value", func(c *Container) { c.Labels = map[string]string{"a": "b\nc"} }, "Invalid label value"},
		{"environment", func(c *Container) { c.Environment = "dev; rm" }, "Invalid environment"},
		{"root relative", func(c *Container) { c.Root = "home/alice" }, "Invalid root"},
		{"state version word", func(c *Container) { c.StateVersion = "unstable" }, "Invalid state_version"},
		{"state version nix", func(c *Container) { c.StateVersion = `24.11"; x = "` }, "Invalid state_version"},
		{"state version patch", func(c *Container) { c.StateVersion = "24.11.1234" }, "Invalid state_version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r := Open(dir)
			c := testContainer("web", "10.233.0.2")
			tt.edit(c)
			err := r.Put(c)
			var de *diag.Error
			require.ErrorAs(t, err, &de)
			assert.Contains(t, err.Error(), tt.want)
			entries, _ := os.ReadDir(r.Dir())
			assert.Empty(t, entries, "nothing written")
			_, statErr := os.Stat(filepath.Join(dir, "..", "etc.hcl"))
			assert.True(t, os.IsNotExist(statErr))
		})
	}
}

func TestPutRefusesBrokenFile(t *testing.T) {
	r := Open(t.TempDir())
	require.NoError(t, os.MkdirAll(r.Dir(), 0o755))
	broken := []byte("name = \"web\"\naliases = [\"shop\",\n")
	require.NoError(t, os.WriteFile(r.Path("web"), broken, 0o644))
	err := r.Put(testContainer("web", "10.233.0.2"))
	var de *diag.Error
	require.ErrorAs(t, err, &de)
	got, _ := os.ReadFile(r.Path("web"))
	assert.Equal(t, broken, got, "untouched")
}

// TestPutNeverWritesUnreadable: an unknown attribute a person added stays
// in the file, so Put refuses instead of writing a file LoadAll rejects;
// a broken value that Put replaces is repaired.
func TestPutNeverWritesUnreadable(t *testing.T) {
	r := Open(t.TempDir())
	withNote := validEntry + "notes = \"ask alice\"\n"
	writeEntry(t, r, "web", withNote)
	c := testContainer("web", "10.233.0.2")
	err := r.Put(c)
	var de *diag.Error
	require.ErrorAs(t, err, &de)
	assert.Contains(t, err.Error(), `argument named "notes" is not expected`)
	got, _ := os.ReadFile(r.Path("web"))
	assert.Equal(t, withNote, string(got), "untouched")

	writeEntry(t, r, "web", strings.Replace(validEntry, `"running"`, `"sleeping"`, 1))
	require.NoError(t, r.Put(c))
	back, err := r.Get("web")
	require.NoError(t, err)
	assert.Equal(t, Running, back.State)
}

func TestGetDelete(t *testing.T) {
	r := Open(t.TempDir())
	_, err := r.Get("web")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, r.Delete("web"), ErrNotFound)
	_, err = r.Get("../../etc/passwd")
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrNotFound)

	require.NoError(t, r.Put(testContainer("web", "10.233.0.2")))
	_, err = r.Get("web")
	require.NoError(t, err)
	require.NoError(t, r.Delete("web"))
	_, err = r.Get("web")
	require.ErrorIs(t, err, ErrNotFound)
	entries, err := os.ReadDir(r.Dir())
	require.NoError(t, err)
	assert.Empty(t, entries, "no temporary files left behind")
}

func TestLoadAllEmpty(t *testing.T) {
	all, err := Open(filepath.Join(t.TempDir(), "missing")).LoadAll()
	require.NoError(t, err)
	assert.Empty(t, all)
}

// validEntry is web.hcl as a person would write it.
const validEntry = `name         = "web"
owner        = "alice"
channel      = "https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz"
aliases      = ["shop", "admin"]
address      = "10.233.0.2"
state        = "running"
created      = "2026-11-20T10:00:00Z"
deployed     = "2026-11-25T09:00:00Z"
`

// TestDecodeBadInput: every kind of mistake in a hand-edited entry is
// reported with its position.
func TestDecodeBadInput(t *testing.T) {
	repl := func(old, new string) string {
		if !strings.Contains(validEntry, old) {
			panic(old)
		}
		return strings.Replace(validEntry, old, new, 1)
	}
	tests := []struct {
		name      string
		src       string
		line, col int
		want      string
	}{
		{"truncated", validEntry[:strings.Index(validEntry, `"shop", `)+8], 4, 25, "Missing expression"},
		{"truncated string", validEntry[:strings.Index(validEntry, "10.233")+4], 5, 21, "Unterminated"},
		{"empty file", "", 1, 1, "Missing required argument"},
		{"missing owner", repl("owner        = \"alice\"\n", ""), 1, 1, `"owner" is required`},
		{"unknown key", repl("deployed", "deploy"), 8, 1, `Did you mean "deployed"?`},
		{"block", validEntry + "labels {\n}\n", 9, 1, "Unsupported block type"},
		{"wrong type keep", validEntry + "keep = \"yes\"\n", 9, 9, "Unsuitable value type"},
		{"wrong type aliases", repl(`["shop", "admin"]`, `"shop admin"`), 4, 17, "list of string required"},
		{"wrong type labels", validEntry + "labels = [\"a\"]\n", 9, 10, "Unsuitable value type"},
		{"number name", repl(`"web"`, "42"), 1, 16, "Invalid container name"},
		{"bad name", repl(`"web"`, `"Web_1"`), 1, 16, "Invalid container name"},
		{"name mismatch", repl(`"web"`, `"shop"`), 1, 16, "Name does not match file name"},
		{"bad alias", repl(`"admin"`, `"ad min"`), 4, 16, "Invalid alias"},
		{"bad address", repl("10.233.0.2", "10.233.0.256"), 5, 16, "Invalid address"},
		{"ipv4 as name", repl("10.233.0.2", "localhost"), 5, 16, "Invalid address"},
		{"bad state", repl(`"running"`, `"started"`), 6, 16, "Invalid state"},
		{"bad created", repl("2026-11-20T10:00:00Z", "2026-11-20 10:00"), 7, 16, "RFC 3339"},
		{"bad deployed", repl("2026-11-25T09:00:00Z", "yesterday"), 8, 16, "RFC 3339"},
		{"deployed before created", repl("2026-11-25T09:00:00Z", "2026-11-19T09:00:00Z"), 8, 16, "Deployed before created"},
		{"bad channel", repl("https://hydra", "ftp://hydra"), 3, 16, "Invalid channel"},
		{"interpolation", repl(`"alice"`, `"${var.user}"`), 2, 19, "Variables not allowed"},
		{"function call", repl(`"alice"`, `upper("alice")`), 2, 16, "Function calls not allowed"},
		{"duplicate attribute", validEntry + "state = \"stopped\"\n", 9, 1, "Attribute redefined"},
		{"bad ssh key", validEntry + "ssh_keys = [\"ssh-rsa nope\"]\n", 9, 12, "Invalid SSH key"},
		{"bad memory_max", validEntry + "memory_max = \"2GB\"\n", 9, 14, "Invalid memory_max"},
		{"bad cpu_weight", validEntry + "cpu_weight = 10001\n", 9, 14, "Invalid cpu_weight"},
		{"fractional cpu_weight", validEntry + "cpu_weight = 1.5\n", 9, 14, "Unsuitable value"},
		{"bad cpu_quota", validEntry + "cpu_quota = \"2\"\n", 9, 13, "Invalid cpu_quota"},
		{"bad tasks_max", validEntry + "tasks_max = -1\n", 9, 13, "Invalid tasks_max"},
		{"bad expires_at", validEntry + "expires_at = \"in 3 days\"\n", 9, 14, "RFC 3339"},
		{"bad protect_user", validEntry + "protect_user = \"a:b\"\n", 9, 16, "Invalid protect_user"},
		{"bad address6", validEntry + "address6 = \"fd00::g\"\n", 9, 12, "Invalid address6"},
		{"address6 is IPv4", validEntry + "address6 = \"10.233.0.3\"\n", 9, 12, "Invalid address6"},
		{"address6 link-local", validEntry + "address6 = \"fe80::2\"\n", 9, 12, "Invalid address6"},
		{"address6 mapped IPv4", validEntry + "address6 = \"::ffff:10.233.0.3\"\n", 9, 12, "Invalid address6"},
		{"address6 multicast", validEntry + "address6 = \"ff02::2\"\n", 9, 12, "Invalid address6"},
		{"address6 wrong type", validEntry + "address6 = [\"fd00::2\"]\n", 9, 12, "Unsuitable value type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, diags := Decode("/state/containers/web.hcl", []byte(tt.src))
			require.True(t, diags.HasErrors(), "src:\n%s", tt.src)
			assert.Nil(t, c)
			d := diags[0]
			require.NotNil(t, d.Subject, diag.Line(d))
			assert.Equal(t, "/state/containers/web.hcl", d.Subject.Filename)
			assert.Equal(t, tt.line, d.Subject.Start.Line, diag.Line(d))
			assert.Equal(t, tt.col, d.Subject.Start.Column, diag.Line(d))
			var all strings.Builder
			for _, d := range diags {
				all.WriteString(d.Summary + " " + d.Detail + "\n")
			}
			assert.Contains(t, all.String(), tt.want)
		})
	}
}

// TestDecodeReportsEachProblemOnce: a mistyped attribute is not reported a
// second time by the semantic checks, and independent mistakes all appear.
func TestDecodeReportsEachProblemOnce(t *testing.T) {
	src := strings.NewReplacer(`"running"`, `"paused"`, `"10.233.0.2"`, `"x"`, `["shop", "admin"]`, `["Shop"]`).Replace(validEntry)
	_, diags := Decode("web.hcl", []byte(src))
	var lines []int
	for _, d := range diags {
		lines = append(lines, d.Subject.Start.Line)
	}
	assert.ElementsMatch(t, []int{4, 5, 6}, lines, "%v", diags)
}

func writeEntry(t testing.TB, r *Registry, name, src string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(r.Dir(), 0o755))
	require.NoError(t, os.WriteFile(r.Path(name), []byte(src), 0o644))
}

// TestLoadAllReportsEveryBadEntry: one run lists all broken files, and the
// good ones are still returned.
func TestLoadAllReportsEveryBadEntry(t *testing.T) {
	r := Open(t.TempDir())
	require.NoError(t, r.Put(testContainer("good", "10.233.0.9")))
	writeEntry(t, r, "web", strings.Replace(validEntry, `"running"`, `"runnin"`, 1))
	writeEntry(t, r, "shop", strings.Replace(validEntry, `"web"`, `"shop"`, 1)[:60])
	writeEntry(t, r, "dup", strings.NewReplacer(`"web"`, `"dup"`, "10.233.0.2", "10.233.0.9").Replace(validEntry))
	// ignored: temporary files of writes in progress, other extensions
	writeEntry(t, r, ".web.hcl.tmp123", "garbage")
	require.NoError(t, os.WriteFile(filepath.Join(r.Dir(), "README"), []byte("x"), 0o644))

	all, err := r.LoadAll()
	var de *diag.Error
	require.ErrorAs(t, err, &de)
	files := map[string]string{}
	for _, d := range de.Diags {
		require.NotNil(t, d.Subject)
		files[filepath.Base(d.Subject.Filename)] = d.Summary
		assert.NotNil(t, de.Files[d.Subject.Filename], "bytes for the snippet of %s", d.Subject.Filename)
	}
	// Of two entries sharing an address, the later by name is reported.
	assert.Equal(t, map[string]string{"web.hcl": "Invalid state", "shop.hcl": "Missing expression", "good.hcl": "Address used twice"}, files)
	require.Len(t, all, 1)
	assert.Equal(t, "dup", all[0].Name)

	var out bytes.Buffer
	require.NoError(t, diag.Write(&out, de.Diags, de.Files, false))
	assert.Contains(t, out.String(), `6: state        = "runnin"`)
}

func TestLockWaitsAndHonoursContext(t *testing.T) {
	r := Open(t.TempDir())
	unlock, err := r.Lock(context.Background())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = Open(r.stateDir).Lock(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	unlock()
	unlock2, err := r.Lock(context.Background())
	require.NoError(t, err, "the abandoned waiter released the lock")
	unlock2()
}

// increment does one read-modify-write of the counter label under the lock.
func increment(r *Registry) error {
	unlock, err := r.Lock(context.Background())
	if err != nil {
		return err
	}
	defer unlock()
	c, err := r.Get("web")
	if err != nil {
		return err
	}
	var n int
	if _, err := fmt.Sscan(c.Labels["counter"], &n); err != nil {
		return err
	}
	c.Labels["counter"] = fmt.Sprint(n + 1)
	return r.Put(c)
}

func TestConcurrentGoroutinesLoseNoUpdate(t *testing.T) {
	dir := t.TempDir()
	c := testContainer("web", "10.233.0.2")
	c.Labels["counter"] = "0"
	require.NoError(t, Open(dir).Put(c))
	const workers, each = 8, 15
	errs := make(chan error, workers)
	for range workers {
		go func() {
			r := Open(dir) // separate handles, as separate commands would have
			for range each {
				if err := increment(r); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		require.NoError(t, <-errs)
	}
	got, err := Open(dir).Get("web")
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprint(workers*each), got.Labels["counter"])
}

const helperIncrements = 5

// TestHelperIncrement is run as a child process by
// TestConcurrentProcessesLoseNoUpdate.
func TestHelperIncrement(t *testing.T) {
	dir := os.Getenv("REGISTRY_TEST_DIR")
	if dir == "" {
		t.Skip("helper process for TestConcurrentProcessesLoseNoUpdate")
	}
	r := Open(dir)
	for range helperIncrements {
		require.NoError(t, increment(r))
	}
}

func TestConcurrentProcessesLoseNoUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	c := testContainer("web", "10.233.0.2")
	c.Labels["counter"] = "0"
	require.NoError(t, Open(dir).Put(c))
	const procs = 3
	cmds := make([]*execCmd, procs)
	for i := range cmds {
		cmds[i] = startHelper(t, dir)
	}
	for _, cmd := range cmds {
		out, err := cmd.wait()
		require.NoError(t, err, out)
	}
	got, err := Open(dir).Get("web")
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprint(procs*helperIncrements), got.Labels["counter"])
}

func TestDecodeDiagnosticsAreHCL(t *testing.T) {
	// The CLI prints registry problems with HCL's writer: make sure the
	// diagnostics are plain hcl.Diagnostics with errors.
	_, diags := Decode("web.hcl", []byte("name = "))
	assert.IsType(t, hcl.Diagnostics{}, diags)
	assert.True(t, diags.HasErrors())
	assert.False(t, errors.Is(diag.NewError(diags, nil), ErrNotFound))
}

// TestOldChannelIsReportedNotDropped: an entry written before the channel
// grammar tightened (a query, '=') is reported at its line with what to
// use instead, and the file is left as it is.
func TestOldChannelIsReportedNotDropped(t *testing.T) {
	r := Open(t.TempDir())
	src := strings.Replace(validEntry, "nixexprs.tar.xz", "nixexprs.tar.xz?rev=1", 1)
	writeEntry(t, r, "web", src)
	_, err := r.LoadAll()
	var de *diag.Error
	require.ErrorAs(t, err, &de)
	require.Len(t, de.Diags, 1)
	d := de.Diags[0]
	assert.Equal(t, "Invalid channel", d.Summary)
	require.NotNil(t, d.Subject)
	assert.Equal(t, r.Path("web"), d.Subject.Filename)
	assert.Equal(t, 3, d.Subject.Start.Line)
	assert.Contains(t, d.Detail, "its path contains '?'")
	assert.Contains(t, d.Detail, "use an https:// URL")
	_, err = r.Get("web")
	assert.ErrorContains(t, err, "web.hcl:3")
	b, err := os.ReadFile(r.Path("web"))
	require.NoError(t, err)
	assert.Equal(t, src, string(b), "the entry is left for its admin to fix")
}

// A container may be shared with any NixOS login name (jane.doe).
func TestSharedWithLoginName(t *testing.T) {
	r := Open(t.TempDir())
	c := testContainer("web", "10.233.0.2")
	c.SharedWith = []string{"jane.doe", "_bob"}
	c.SharedKeys = []string{sharedKey + ".doe"}
	require.NoError(t, r.Put(c))
	got, err := r.Get("web")
	require.NoError(t, err)
	assert.Equal(t, c.SharedWith, got.SharedWith)
	assert.Equal(t, c.SharedKeys, got.SharedKeys)
}
