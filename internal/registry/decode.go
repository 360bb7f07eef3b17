package registry

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/flyingcircusio/devhost/internal/hclinput"
)

// MaxEntrySize bounds a registry entry file. An entry is a few hundred
// bytes; last_error is cut to a few KiB.
const MaxEntrySize = 256 << 10

// timeLayout is how times are written: RFC 3339 in UTC, whole seconds.
const timeLayout = time.RFC3339

// attribute names, in the order a new file lists them.
var attrOrder = []string{
	"name", "owner", "environment", "root", "service_user", "channel", "state_version", "aliases", "address",
	"address6", "state", "created", "deployed", "keep", "ssh_keys", "shared_with", "shared_keys", "last_error", "labels",
	"memory_max", "cpu_weight", "cpu_quota", "tasks_max", "expires_at", "protect_user",
}

var required = map[string]bool{"name": true, "owner": true, "channel": true, "address": true, "state": true, "created": true}

var entrySchema = func() *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, n := range attrOrder {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: n, Required: required[n]})
	}
	return s
}()

// Decode parses one registry entry. filename is used in diagnostics and
// must be <name>.hcl; every problem found is returned, each with its
// position, and the Container is nil when there is any.
func Decode(filename string, src []byte) (*Container, hcl.Diagnostics) {
	if len(src) > MaxEntrySize {
		return nil, hclinput.CheckNative(filename, src, MaxEntrySize)
	}
	if c, ok := decodeFast(filename, src); ok {
		return c, nil
	}
	return decodeHCL(filename, src)
}

// decodeHCL is Decode with HCL's own parser: every syntax HCL accepts, and
// positioned diagnostics for every problem.
func decodeHCL(filename string, src []byte) (*Container, hcl.Diagnostics) {
	body, diags := parseNative(filename, src)
	if diags.HasErrors() {
		return nil, diags
	}
	content, cdiags := body.Content(entrySchema)
	diags = append(diags, cdiags...)

	c := &Container{}
	ranges := map[string]*hcl.Range{}
	ok := map[string]bool{} // decoded without a diagnostic
	decode := func(name string, target any) bool {
		a := content.Attributes[name]
		if a == nil {
			return false
		}
		r := a.Expr.Range()
		ranges[name] = &r
		d := gohcl.DecodeExpression(a.Expr, nil, target)
		diags = append(diags, d...)
		ok[name] = !d.HasErrors()
		return ok[name]
	}
	bad := func(name, summary, detail string) {
		ok[name] = false
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: ranges[name]})
	}

	decode("name", &c.Name)
	decode("owner", &c.Owner)
	decode("environment", &c.Environment)
	decode("root", &c.Root)
	decode("service_user", &c.ServiceUser)
	decode("channel", &c.Channel)
	decode("state_version", &c.StateVersion)
	decode("aliases", &c.Aliases)
	var s string
	if decode("address", &s) {
		if a, err := netip.ParseAddr(s); err != nil {
			bad("address", "Invalid address", fmt.Sprintf("%q is not an IP address (%v).", s, err))
		} else {
			c.Address = a
		}
	}
	s = ""
	if decode("address6", &s) && s != "" {
		if a, err := netip.ParseAddr(s); err != nil {
			bad("address6", "Invalid address6", fmt.Sprintf("%q is not an IP address (%v).", s, err))
		} else {
			c.Address6 = a
		}
	}
	if decode("state", &s) {
		c.State = State(s)
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"created", &c.Created}, {"deployed", &c.Deployed}, {"expires_at", &c.ExpiresAt}} {
		s = ""
		if !decode(t.name, &s) || s == "" && t.name != "created" {
			continue
		}
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			bad(t.name, "Invalid time", fmt.Sprintf("%q is not an RFC 3339 time; write it like \"2026-11-20T10:00:00Z\".", s))
			continue
		}
		*t.dst = tm
	}
	decode("keep", &c.Keep)
	decode("ssh_keys", &c.SSHKeys)
	decode("shared_with", &c.SharedWith)
	decode("shared_keys", &c.SharedKeys)
	decode("last_error", &c.LastError)
	decode("labels", &c.Labels)
	decode("memory_max", &c.Limits.MemoryMax)
	decode("cpu_weight", &c.Limits.CPUWeight)
	decode("cpu_quota", &c.Limits.CPUQuota)
	decode("tasks_max", &c.Limits.TasksMax)
	decode("protect_user", &c.ProtectUser)

	if ok["name"] && c.Name != "" {
		if want := strings.TrimSuffix(filepath.Base(filename), ".hcl"); want != c.Name {
			bad("name", "Name does not match file name",
				fmt.Sprintf("The file %s must hold the container %q; rename the file to %s.hcl or fix name.", filepath.Base(filename), want, c.Name))
			ok["name"] = true
		}
	}
	// Semantic checks apply to attributes that decoded; a missing or
	// mistyped attribute already has its diagnostic, so the check's
	// complaint about it (which has no range) is dropped.
	for _, d := range c.check(func(name string) *hcl.Range {
		if ok[name] {
			return ranges[name]
		}
		return nil
	}) {
		if d.Subject != nil {
			diags = append(diags, d)
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	c.normalize()
	return c, diags
}
