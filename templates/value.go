package templates

// unlock is the key that opens a Value. Templates cannot construct one, so
// they cannot call a Value themselves (`{{ call .Name }}` fails with "wrong
// number of args"); only the escaping functions of FuncMap can.
type unlock struct{}

// Value is a string from the registry or the host configuration, as
// templates see it. It is deliberately a function type: text/template
// refuses to print a function ("can't print {{.Name}} of type
// templates.Value"), so `{{ .Name }}` without an escaper makes execution
// fail, and functions that take `any` (printf, sprig's quote, toString)
// print only an address, never the value. The one way from a Value to
// output is an escaping function: nixStr, nixAttr, nixPath, nixStrs, html.
type Value func(unlock) string

// V wraps s for templates.
func V(s string) Value { return func(unlock) string { return s } }

// Vs wraps each of ss.
func Vs(ss []string) []Value {
	if len(ss) == 0 {
		return nil
	}
	out := make([]Value, len(ss))
	for i, s := range ss {
		out[i] = V(s)
	}
	return out
}

// Empty reports whether the value is the empty string; templates use it in
// conditions: {{ if not .ServiceUser.Empty }}.
func (v Value) Empty() bool { return v == nil || v(unlock{}) == "" }

// Unwrap returns the plain string. It is for Go code (tests, the generator),
// not reachable from templates: methods with arguments of unexported types
// cannot be called there, and this one is not a method.
func Unwrap(v Value) string {
	if v == nil {
		return ""
	}
	return v(unlock{})
}
