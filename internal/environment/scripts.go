package environment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// checker runs the syntax checks of provision.nix and provision.sh.
type checker struct {
	ctx     context.Context
	timeout time.Duration
}

// run executes argv with the checker's timeout and returns its combined
// output; found is false when the command does not exist.
func (c checker) run(argv []string) (out []byte, exitErr error, found bool, err error) {
	path, lerr := exec.LookPath(argv[0])
	if lerr != nil {
		return nil, nil, false, nil
	}
	ctx := c.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	t := c.timeout
	if t <= 0 {
		t = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	// A killed command's children may hold the output open; stop waiting
	// for them soon after the timeout.
	cmd.WaitDelay = time.Second
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	rerr := cmd.Run()
	if ctx.Err() != nil {
		return buf.Bytes(), nil, true, fmt.Errorf("%s: %w after %s", argv[0], ctx.Err(), t)
	}
	var ee *exec.ExitError
	if errors.As(rerr, &ee) {
		return buf.Bytes(), ee, true, nil
	}
	if rerr != nil {
		return buf.Bytes(), nil, true, fmt.Errorf("%s: %w", argv[0], rerr)
	}
	return buf.Bytes(), nil, true, nil
}

// Nix reports syntax errors as "error: <message>" followed by the location,
// either on the same line (", at /path:4:39", older Nix) or on a line of
// its own ("at /path:4:39:", Nix 2.4 and later).
var (
	nixAtLine = regexp.MustCompile(`(?m)^\s*at (.+):(\d+):(\d+):\s*$`)
	nixAtTail = regexp.MustCompile(`, at (.+):(\d+):(\d+)\s*$`)
	nixError  = regexp.MustCompile(`(?m)^error: (.*)$`)
)

// nix checks provision.nix with `nix-instantiate --parse`, which parses
// (and resolves variables) without evaluating anything or using the network.
func (c checker) nix(cmd, path, name string, src []byte) hcl.Diagnostics {
	// Nix reports absolute paths; pass one so the report can be matched.
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	out, exitErr, found, err := c.run([]string{cmd, "--parse", path})
	if !found {
		return hcl.Diagnostics{{Severity: hcl.DiagWarning,
			Summary: fmt.Sprintf("%s was not checked: %s not found", filepath.Base(name), cmd),
			Detail:  "Install Nix (e.g. apt-get install nix-bin) to have devhost check provision.nix before it reaches a container."}}
	}
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagWarning,
			Summary: fmt.Sprintf("%s was not checked", filepath.Base(name)), Detail: err.Error()}}
	}
	if exitErr == nil {
		return nil
	}
	text := strings.TrimSpace(string(out))
	msg := text
	if m := nixError.FindStringSubmatch(text); m != nil {
		msg = m[1]
	}
	line, col := 0, 0
	var at []string
	if at = nixAtLine.FindStringSubmatch(text); at == nil {
		at = nixAtTail.FindStringSubmatch(msg)
		if at != nil {
			msg = strings.TrimSuffix(msg, at[0])
		}
	}
	if at != nil && sameFile(at[1], path) {
		line, _ = strconv.Atoi(at[2])
		col, _ = strconv.Atoi(at[3])
	}
	if line == 0 {
		// No position in the file: Nix failed for another reason (e.g. no
		// access to its store), which says nothing about provision.nix.
		return hcl.Diagnostics{{Severity: hcl.DiagWarning,
			Summary: fmt.Sprintf("%s was not checked: %s failed", filepath.Base(name), cmd), Detail: text}}
	}
	ix := newLineIndex(name, src)
	off := ix.lineCol(line, col)
	r := ix.rng(off, min(off+1, len(src)))
	return hcl.Diagnostics{{Severity: hcl.DiagError,
		Summary: "Nix syntax error in provision.nix: " + msg,
		Detail:  "The container's configuration imports provision.nix; fix it so that `nix-instantiate --parse` accepts it.",
		Subject: &r}}
}

func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	ea, err1 := filepath.EvalSymlinks(a)
	eb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ea == eb
}

// bashLine matches bash -n's "FILE: line N: message".
var bashLine = regexp.MustCompile(`(?m)^(.*): line (\d+): (.*)$`)

// bash checks provision.sh with `bash -n` (parse only, nothing runs).
func (c checker) bash(cmd, path, name string, src []byte) hcl.Diagnostics {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	out, exitErr, found, err := c.run([]string{cmd, "-n", path})
	if !found {
		return hcl.Diagnostics{{Severity: hcl.DiagWarning,
			Summary: fmt.Sprintf("%s was not checked: %s not found", filepath.Base(name), cmd),
			Detail:  "Install bash to have devhost check provision.sh."}}
	}
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagWarning,
			Summary: fmt.Sprintf("%s was not checked", filepath.Base(name)), Detail: err.Error()}}
	}
	if exitErr == nil {
		return nil
	}
	ix := newLineIndex(name, src)
	var diags hcl.Diagnostics
	seen := map[int]bool{}
	for _, m := range bashLine.FindAllStringSubmatch(string(out), -1) {
		line, _ := strconv.Atoi(m[2])
		// bash repeats the offending line ("line 2: `if then'"); one
		// diagnostic a line is enough.
		if seen[line] || !sameFile(m[1], path) {
			continue
		}
		seen[line] = true
		r := ix.lineRange(line)
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
			Summary: "shell syntax error in provision.sh: " + m[3],
			Detail:  "provision.sh runs in a shell on your machine before batou deploys; fix it so that `bash -n` accepts it.",
			Subject: &r})
	}
	if len(diags) == 0 {
		diags = hcl.Diagnostics{{Severity: hcl.DiagWarning,
			Summary: fmt.Sprintf("%s was not checked: %s -n failed", filepath.Base(name), cmd),
			Detail:  strings.TrimSpace(string(out))}}
	}
	return diags
}
