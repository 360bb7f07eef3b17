package codesync

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCountItems(t *testing.T) {
	out := "cd+++++++++\n<f+++++++++\n<f.st......\n>f..t......\ncL+++++++++\n.d..t......\n*deleting  \n.f...p.....\n"
	assert.Equal(t, Result{Files: 4, Deleted: 1}, countItems([]byte(out)))
}

func TestArgv(t *testing.T) {
	s := &Sync{SSH: "/opt/my ssh", SSHConfig: "/home/al/it's/ssh_config_dev", Host: "3f2a9c01b7e", ServiceUser: "s-shop",
		Src: "/home/al/shop/src/", Dest: "/srv/s-shop/my src", Delete: true, Rules: mustRules(t, "*.pyc\n")}
	argv, err := s.Argv()
	require.NoError(t, err)
	assert.Equal(t, []string{"rsync", "--archive", "--compress", "--protect-args", "--out-format=%i",
		`--rsh='/opt/my ssh' -F '/home/al/it''s/ssh_config_dev'`,
		"--rsync-path=sudo -n -u s-shop -- rsync", "--delete", "--filter=- .git", "--filter=- *.pyc",
		"--", "/home/al/shop/src/", "3f2a9c01b7e:/srv/s-shop/my src/"}, argv)
}

// Every value that reaches the remote shell or rsync's host argument is
// checked: a user name cannot add a command to --rsync-path.
func TestArgvRefuses(t *testing.T) {
	ok := Sync{SSHConfig: "/c", Host: "web", ServiceUser: "s-shop", Src: "/src", Dest: "/srv/s-shop/src"}
	tests := []struct {
		name string
		edit func(*Sync)
	}{
		{"user with a shell command", func(s *Sync) { s.ServiceUser = "s-shop; rm -rf /" }},
		{"user with a space", func(s *Sync) { s.ServiceUser = "a b" }},
		{"host with a colon", func(s *Sync) { s.Host = "web:/etc" }},
		{"host as an option", func(s *Sync) { s.Host = "-oProxyCommand=x" }},
		{"relative destination", func(s *Sync) { s.Dest = "srv" }},
		{"relative source", func(s *Sync) { s.Src = "src" }},
		{"newline in destination", func(s *Sync) { s.Dest = "/srv/a\nb" }},
	}
	for _, tt := range tests {
		s := ok
		tt.edit(&s)
		_, err := s.Argv()
		assert.Error(t, err, tt.name)
	}
	_, err := ok.Argv()
	assert.NoError(t, err)
}
