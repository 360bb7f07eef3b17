package cli

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/flyingcircusio/devhost/internal/lifecycle"
)

func TestVisible(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ünïcode":       "plain text, ünïcode",
		"esc \x1b[2J clear":         `esc \x1b[2J clear`,
		"cr\roverwrite":             `cr\roverwrite`,
		"nul\x00byte":               `nul\x00byte`,
		"bell\a tab\t del\x7f":      `bell\a tab\t del\x7f`,
		"c1 \u009b csi":             `c1 \u009b csi`,
		"bidi \u202egnp.exe":        `bidi \u202egnp.exe`,
		"bad utf-8 \xff\xfe":        `bad utf-8 \xff\xfe`,
		`a literal \x1b stays text`: `a literal \\x1b stays text`,
		"two\nlines":                "two\nlines",
	} {
		assert.Equal(t, want, visible(in), "%q", in)
	}
}

func TestPrintStatusLastError(t *testing.T) {
	var b bytes.Buffer
	printStatus(&b, &lifecycle.Status{Name: "shop", LastError: "first\x1b[31m\nsecond\r\x00"})
	assert.Contains(t, b.String(), "last error:   first\\x1b[31m\n              second\\r\\x00\n")
	assert.NotContains(t, b.String(), "\x1b")
}
