package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"sort"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/hclinput"
)

// header starts every new registry file.
const header = "# devhost registry entry. Comments and layout survive devhost's edits;\n" +
	"# run `devhost list` after editing by hand to check the file.\n"

// parseNative parses a registry file with HCL's parser, once its size
// and nesting depth are known to be safe for it.
func parseNative(filename string, src []byte) (*hclsyntax.Body, hcl.Diagnostics) {
	if diags := hclinput.CheckNative(filename, src, MaxEntrySize); diags.HasErrors() {
		return nil, diags
	}
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	return f.Body.(*hclsyntax.Body), diags
}

func stringList(l []string) cty.Value {
	if len(l) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	vs := make([]cty.Value, len(l))
	for i, s := range l {
		vs[i] = cty.StringVal(s)
	}
	return cty.ListVal(vs)
}

// addrString is a's text, or "" for the invalid address (none).
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Truncate(time.Second).Format(timeLayout)
}

// values are the attribute values of c, by attribute name.
func (c *Container) values() map[string]cty.Value {
	labels := cty.MapValEmpty(cty.String)
	if len(c.Labels) > 0 {
		m := make(map[string]cty.Value, len(c.Labels))
		for k, v := range c.Labels {
			m[k] = cty.StringVal(v)
		}
		labels = cty.MapVal(m)
	}
	return map[string]cty.Value{
		"name":         cty.StringVal(c.Name),
		"owner":        cty.StringVal(c.Owner),
		"environment":  cty.StringVal(c.Environment),
		"root":         cty.StringVal(c.Root),
		"service_user": cty.StringVal(c.ServiceUser),
		"channel":      cty.StringVal(c.Channel),
		"aliases":      stringList(c.Aliases),
		"address":      cty.StringVal(c.Address.String()),
		"address6":     cty.StringVal(addrString(c.Address6)),
		"state":        cty.StringVal(string(c.State)),
		"created":      cty.StringVal(formatTime(c.Created)),
		"deployed":     cty.StringVal(formatTime(c.Deployed)),
		"keep":         cty.BoolVal(c.Keep),
		"ssh_keys":     stringList(c.SSHKeys),
		"shared_with":  stringList(c.SharedWith),
		"shared_keys":  stringList(c.SharedKeys),
		"last_error":   cty.StringVal(c.LastError),
		"labels":       labels,
		"memory_max":   cty.StringVal(c.Limits.MemoryMax),
		"cpu_weight":   cty.NumberIntVal(int64(c.Limits.CPUWeight)),
		"cpu_quota":    cty.StringVal(c.Limits.CPUQuota),
		"tasks_max":    cty.NumberIntVal(int64(c.Limits.TasksMax)),
		"expires_at":   cty.StringVal(formatTime(c.ExpiresAt)),
		"protect_user": cty.StringVal(c.ProtectUser),

		"state_version": cty.StringVal(c.StateVersion),
	}
}

// tokens renders v on one line; maps become { k = "v", k2 = "v2" } rather
// than hclwrite's multi-line form, so an edit never reflows its neighbours.
func tokens(v cty.Value) hclwrite.Tokens {
	if !v.Type().IsMapType() {
		return hclwrite.TokensForValue(v)
	}
	m := v.AsValueMap()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ts := hclwrite.Tokens{{Type: hclsyntax.TokenOBrace, Bytes: []byte("{")}}
	for i, k := range keys {
		if i > 0 {
			ts = append(ts, &hclwrite.Token{Type: hclsyntax.TokenComma, Bytes: []byte(",")})
		}
		key := hclwrite.TokensForValue(cty.StringVal(k))
		if hclsyntax.ValidIdentifier(k) {
			key = hclwrite.TokensForIdentifier(k)
		}
		key[0].SpacesBefore = 1
		ts = append(ts, key...)
		ts = append(ts, &hclwrite.Token{Type: hclsyntax.TokenEqual, Bytes: []byte("="), SpacesBefore: 1})
		val := hclwrite.TokensForValue(m[k])
		val[0].SpacesBefore = 1
		ts = append(ts, val...)
	}
	end := &hclwrite.Token{Type: hclsyntax.TokenCBrace, Bytes: []byte("}")}
	if len(keys) > 0 {
		end.SpacesBefore = 1
	}
	return append(ts, end)
}

// sameValue reports whether the existing expression old already says what
// v says, so an unchanged attribute keeps its exact text (times compare as
// instants, lists and maps by content).
func sameValue(name string, old hcl.Expression, v cty.Value) bool {
	ov, diags := old.Value(nil)
	if diags.HasErrors() || ov.IsNull() || !ov.IsKnown() {
		return false
	}
	if name == "created" || name == "deployed" || name == "expires_at" {
		if ov.Type() != cty.String {
			return false
		}
		if ov.AsString() == "" || v.AsString() == "" {
			return ov.AsString() == v.AsString()
		}
		a, err1 := time.Parse(time.RFC3339, ov.AsString())
		b, err2 := time.Parse(time.RFC3339, v.AsString())
		return err1 == nil && err2 == nil && a.Equal(b)
	}
	cv, err := convert.Convert(ov, v.Type())
	if err != nil {
		return false
	}
	return cv.Equals(v).True()
}

// omitEmpty are the optional attributes a new file leaves out while unset,
// so an entry lists only the limits, expiry, protection and IPv6 address
// it has.
var omitEmpty = map[string]bool{
	"memory_max": true, "cpu_weight": true, "cpu_quota": true, "tasks_max": true,
	"expires_at": true, "protect_user": true, "state_version": true, "address6": true,
}

// isZero reports whether v is the value an absent optional attribute means.
func isZero(v cty.Value) bool {
	switch {
	case v.Type() == cty.String:
		return v.AsString() == ""
	case v.Type() == cty.Bool:
		return v.False()
	case v.Type() == cty.Number:
		return v.Equals(cty.Zero).True()
	default:
		return v.LengthInt() == 0
	}
}

// render returns the new content of the entry file for c. When old (the
// current content) is not nil, only attributes whose value changed are
// rewritten; comments, order and layout of everything else stay byte for
// byte. Attributes the file lacks are appended unless they are empty.
func render(path string, old []byte, c *Container) ([]byte, error) {
	vals := c.values()
	if old == nil {
		f := hclwrite.NewEmptyFile()
		b := f.Body()
		for _, n := range attrOrder {
			if omitEmpty[n] && isZero(vals[n]) {
				// Unset limits, expiry and protection, no IPv6, and an
				// unknown state_version (an import's: the next ensure
				// records it).
				continue
			}
			b.SetAttributeRaw(n, tokens(vals[n]))
		}
		return append([]byte(header), hclwrite.Format(f.Bytes())...), nil
	}
	body, diags := parseNative(path, old)
	if diags.HasErrors() {
		return nil, diag.NewError(append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Registry entry cannot be updated",
			Detail:   "devhost edits registry files in place to keep comments; fix the syntax error above (or delete the file) and retry.",
		}), map[string][]byte{path: old})
	}
	// Splice the new value text over the old value's byte range, so every
	// other byte (comments, spacing, order) stays exactly as it was.
	type edit struct {
		start, end int
		text       []byte
	}
	var edits []edit
	var appended []byte
	for _, n := range attrOrder {
		v := vals[n]
		if a := body.Attributes[n]; a != nil {
			if !sameValue(n, a.Expr, v) {
				r := a.Expr.Range()
				edits = append(edits, edit{r.Start.Byte, r.End.Byte, valueText(v)})
			}
		} else if !isZero(v) {
			appended = append(appended, n+" = "...)
			appended = append(appended, valueText(v)...)
			appended = append(appended, '\n')
		}
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	out := make([]byte, 0, len(old)+len(appended)+64)
	pos := 0
	for _, e := range edits {
		out = append(out, old[pos:e.start]...)
		out = append(out, e.text...)
		pos = e.end
	}
	out = append(out, old[pos:]...)
	if len(appended) > 0 && len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, appended...), nil
}

// valueText is v written by hclwrite (formatted, on one line).
func valueText(v cty.Value) []byte {
	f := hclwrite.NewEmptyFile()
	f.Body().SetAttributeRaw("v", tokens(v))
	b := f.Bytes()
	return bytes.TrimSpace(b[bytes.IndexByte(b, '=')+1:])
}

// Put validates c and writes its entry atomically. An existing file is
// edited in place: only changed attributes are rewritten, so comments and
// layout a person added survive. An invalid container (a name or alias that
// could never be a DNS label or container name, a bad channel, …) is
// rejected with a *diag.Error before anything is written. Call it under
// Lock: the address cache it appends to counts on one writer at a time.
func (r *Registry) Put(c *Container) error {
	if err := c.Validate(); err != nil {
		return err
	}
	path := r.Path(c.Name)
	old, err := readEntry(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("registry %s: %w", path, err)
	}
	if err != nil {
		old = nil
	} else if old == nil {
		old = []byte{}
	}
	data, err := render(path, old, c)
	if err != nil {
		return err
	}
	// Never write what cannot be read back: a hand-added unknown attribute
	// or a broken value that this edit did not replace would otherwise
	// turn a successful Put into an unreadable registry.
	written, diags := Decode(path, data)
	if diags.HasErrors() {
		return diag.NewError(append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Registry entry cannot be updated",
			Detail:   fmt.Sprintf("%s has the problems above, which devhost's change would keep; fix them by hand (or delete the file) and retry.", path),
		}), map[string][]byte{path: data})
	}
	if bytes.Equal(data, old) && !looser(path) {
		return nil
	}
	return r.writeEntry(c.Name, data, written)
}
