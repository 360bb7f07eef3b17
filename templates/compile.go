package templates

import (
	"bytes"
	"errors"
	"reflect"
	"strconv"
	"sync/atomic"
	"text/template"
	"text/template/parse"
)

// The compiled executor. text/template spends most of a 1,000-container
// render in reflection: every escaper call goes through reflect.Value.Call
// and every field through FieldByName. The embedded templates use a small
// subset of the language (text, fields, variables, if, with, range,
// template, and the escapers, not and len), so Load also compiles each template's
// tree into Go closures that do the same without either: functions are
// called directly with their Go types, and field indices are cached.
//
// text/template stays the specification. A template using anything
// outside the subset (pipelines, sprig, with, ...) is not compiled and runs
// in text/template. A compiled run that meets anything it does not handle
// exactly as text/template would (an unexpected type, a nil pointer, an
// escaper's error) gives up and the template is run again by
// text/template, whose output or error is then the result; errors are
// therefore word for word those of text/template. The tests compare both
// executors on hostile data.

// errFallback makes a compiled run give up in favour of text/template.
var errFallback = errors.New("templates: compiled executor falls back to text/template")

// errUnsupported marks a template the compiler does not handle.
var errUnsupported = errors.New("templates: construct not compiled")

type (
	// exec writes a node's output for dot.
	exec func(s *state, dot reflect.Value) error
	// eval computes an expression for dot.
	eval func(s *state, dot reflect.Value) (reflect.Value, error)
	// evalString computes a function call whose result is a string (the
	// escapers), without boxing it into a reflect.Value.
	evalString func(s *state, dot reflect.Value) (string, error)
)

// state is one compiled execution: its output and variables.
type state struct {
	w    *bytes.Buffer
	vars []variable
	set  map[string]*compiled
}

type variable struct {
	name  string
	value reflect.Value
}

func (s *state) lookup(name string) (reflect.Value, error) {
	for i := len(s.vars) - 1; i >= 0; i-- {
		if s.vars[i].name == name {
			return s.vars[i].value, nil
		}
	}
	return reflect.Value{}, errFallback
}

// compiled is one compiled template.
type compiled struct {
	root exec
}

// run executes c with data into w (which it may leave partly written on
// error; the caller truncates).
func (c *compiled) run(w *bytes.Buffer, set map[string]*compiled, data any) error {
	dot := reflect.ValueOf(data)
	s := &state{w: w, vars: []variable{{"$", dot}}, set: set}
	return c.root(s, dot)
}

// compileSet compiles every template of root it can; the others are
// absent from the result.
func compileSet(root *template.Template) map[string]*compiled {
	out := map[string]*compiled{}
	c := &compiler{funcs: FuncMap()}
	for _, t := range root.Templates() {
		if t.Tree == nil || t.Root == nil {
			continue
		}
		e, err := c.list(t.Root)
		if err != nil {
			continue
		}
		out[t.Name()] = &compiled{root: e}
	}
	// A template that includes one that could not be compiled falls back
	// when it gets there (see templateNode).
	return out
}

type compiler struct {
	funcs template.FuncMap
}

func (c *compiler) list(l *parse.ListNode) (exec, error) {
	if l == nil {
		return func(*state, reflect.Value) error { return nil }, nil
	}
	nodes := make([]exec, 0, len(l.Nodes))
	for _, n := range l.Nodes {
		e, err := c.node(n)
		if err != nil {
			return nil, err
		}
		if e != nil {
			nodes = append(nodes, e)
		}
	}
	return func(s *state, dot reflect.Value) error {
		for _, e := range nodes {
			if err := e(s, dot); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

func (c *compiler) node(n parse.Node) (exec, error) {
	switch n := n.(type) {
	case *parse.TextNode:
		text := n.Text
		return func(s *state, _ reflect.Value) error {
			s.w.Write(text)
			return nil
		}, nil
	case *parse.CommentNode:
		return nil, nil
	case *parse.ActionNode:
		return c.action(n.Pipe)
	case *parse.IfNode:
		return c.ifOrWith(&n.BranchNode, false)
	case *parse.WithNode:
		return c.ifOrWith(&n.BranchNode, true)
	case *parse.RangeNode:
		return c.rangeNode(n)
	case *parse.TemplateNode:
		return c.templateNode(n)
	}
	return nil, errUnsupported
}

// action prints a pipeline of one command without declarations.
func (c *compiler) action(p *parse.PipeNode) (exec, error) {
	if p == nil || len(p.Decl) > 0 || len(p.Cmds) != 1 {
		return nil, errUnsupported
	}
	if str, ok, err := c.stringCall(p.Cmds[0]); err != nil {
		return nil, err
	} else if ok {
		return func(s *state, dot reflect.Value) error {
			v, err := str(s, dot)
			if err != nil {
				return err
			}
			s.w.WriteString(v)
			return nil
		}, nil
	}
	e, err := c.command(p.Cmds[0])
	if err != nil {
		return nil, err
	}
	return func(s *state, dot reflect.Value) error {
		v, err := e(s, dot)
		if err != nil {
			return err
		}
		return printValue(s.w, v)
	}, nil
}

// printValue writes v as text/template's printValue would, for the types
// whose printing is unambiguous: booleans, integers and strings without
// methods. Anything else falls back.
func printValue(w *bytes.Buffer, v reflect.Value) error {
	if !v.IsValid() || v.Type().NumMethod() != 0 || reflect.PointerTo(v.Type()).NumMethod() != 0 {
		return errFallback
	}
	var buf [24]byte
	switch v.Kind() {
	case reflect.Bool:
		w.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		w.Write(strconv.AppendInt(buf[:0], v.Int(), 10))
	case reflect.String:
		w.WriteString(v.String())
	default:
		return errFallback
	}
	return nil
}

// ifOrWith is text/template's walkIfOrWith: the body runs when the
// pipeline's value is true, with that value as dot for with; else the else
// part runs with the original dot.
func (c *compiler) ifOrWith(n *parse.BranchNode, with bool) (exec, error) {
	cond, err := c.pipe(n.Pipe)
	if err != nil {
		return nil, err
	}
	then, els, err := c.branches(n)
	if err != nil {
		return nil, err
	}
	return func(s *state, dot reflect.Value) error {
		v, err := cond(s, dot)
		if err != nil {
			return err
		}
		truth, ok := isTrue(indirectInterface(v))
		if !ok {
			return errFallback
		}
		switch {
		case truth && with:
			return then(s, v)
		case truth:
			return then(s, dot)
		}
		return els(s, dot)
	}, nil
}

// branches compiles the body and the else part of an if or range.
func (c *compiler) branches(n *parse.BranchNode) (body, els exec, err error) {
	if body, err = c.list(n.List); err != nil {
		return nil, nil, err
	}
	if els, err = c.list(n.ElseList); err != nil {
		return nil, nil, err
	}
	return body, els, nil
}

// rangeNode handles range over a slice or array, with zero, one or two
// variables.
func (c *compiler) rangeNode(n *parse.RangeNode) (exec, error) {
	p := n.Pipe
	if p == nil || len(p.Cmds) != 1 || len(p.Decl) > 2 || p.IsAssign {
		return nil, errUnsupported
	}
	var names []string
	for _, d := range p.Decl {
		if len(d.Ident) != 1 {
			return nil, errUnsupported
		}
		names = append(names, d.Ident[0])
	}
	over, err := c.command(p.Cmds[0])
	if err != nil {
		return nil, err
	}
	body, els, err := c.branches(&n.BranchNode)
	if err != nil {
		return nil, err
	}
	return func(s *state, dot reflect.Value) error {
		v, err := over(s, dot)
		if err != nil {
			return err
		}
		v = indirectInterface(v)
		if !v.IsValid() || (v.Kind() != reflect.Slice && v.Kind() != reflect.Array) {
			return errFallback
		}
		if v.Len() == 0 {
			return els(s, dot)
		}
		mark := len(s.vars)
		defer func() { s.vars = s.vars[:mark] }()
		for i := range v.Len() {
			elem := v.Index(i)
			s.vars = s.vars[:mark]
			switch len(names) {
			case 1:
				s.vars = append(s.vars, variable{names[0], elem})
			case 2:
				s.vars = append(s.vars, variable{names[0], reflect.ValueOf(i)}, variable{names[1], elem})
			}
			if err := body(s, elem); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

func (c *compiler) templateNode(n *parse.TemplateNode) (exec, error) {
	arg := func(*state, reflect.Value) (reflect.Value, error) { return reflect.Value{}, nil }
	if n.Pipe != nil {
		var err error
		if arg, err = c.pipe(n.Pipe); err != nil {
			return nil, err
		}
	}
	name := n.Name
	return func(s *state, dot reflect.Value) error {
		t := s.set[name]
		if t == nil {
			return errFallback
		}
		v, err := arg(s, dot)
		if err != nil {
			return err
		}
		inner := &state{w: s.w, vars: []variable{{"$", v}}, set: s.set}
		return t.root(inner, v)
	}, nil
}

// pipe compiles a pipeline of one command without declarations.
func (c *compiler) pipe(p *parse.PipeNode) (eval, error) {
	if p == nil || len(p.Decl) > 0 || len(p.Cmds) != 1 {
		return nil, errUnsupported
	}
	return c.command(p.Cmds[0])
}

// command compiles a command: a function call or a single operand.
func (c *compiler) command(cmd *parse.CommandNode) (eval, error) {
	if str, ok, err := c.stringCall(cmd); err != nil {
		return nil, err
	} else if ok {
		return func(s *state, dot reflect.Value) (reflect.Value, error) {
			v, err := str(s, dot)
			return reflect.ValueOf(v), err
		}, nil
	}
	if id, ok := cmd.Args[0].(*parse.IdentifierNode); ok {
		return c.builtin(id.Ident, cmd.Args[1:])
	}
	if len(cmd.Args) != 1 {
		return nil, errUnsupported
	}
	return c.operand(cmd.Args[0])
}

// builtin compiles text/template's not and len (unless the function map
// replaced them).
func (c *compiler) builtin(name string, args []parse.Node) (eval, error) {
	if _, replaced := c.funcs[name]; replaced || len(args) != 1 {
		return nil, errUnsupported
	}
	arg, err := c.operand(args[0])
	if err != nil {
		return nil, err
	}
	switch name {
	case "not":
		return func(s *state, dot reflect.Value) (reflect.Value, error) {
			v, err := arg(s, dot)
			if err != nil {
				return reflect.Value{}, err
			}
			truth, _ := isTrue(indirectInterface(v))
			return reflect.ValueOf(!truth), nil
		}, nil
	case "len":
		return func(s *state, dot reflect.Value) (reflect.Value, error) {
			v, err := arg(s, dot)
			if err != nil {
				return reflect.Value{}, err
			}
			v = indirectInterface(v)
			switch v.Kind() {
			case reflect.Array, reflect.Chan, reflect.Map, reflect.Slice, reflect.String:
				return reflect.ValueOf(v.Len()), nil
			}
			return reflect.Value{}, errFallback
		}, nil
	}
	return nil, errUnsupported
}

var valueType = reflect.TypeFor[Value]()

// stringCall compiles a call of one of the escapers (ok false for any
// other command).
func (c *compiler) stringCall(cmd *parse.CommandNode) (evalString, bool, error) {
	id, ok := cmd.Args[0].(*parse.IdentifierNode)
	if !ok {
		return nil, false, nil
	}
	args := cmd.Args[1:]
	// The escapers' last argument is a Value or a []Value; nixList's
	// first is an integer constant.
	indent := 0
	switch id.Ident {
	case "nixList":
		if len(args) != 2 {
			return nil, false, errUnsupported
		}
		num, ok := args[0].(*parse.NumberNode)
		if !ok || !num.IsInt {
			return nil, false, errUnsupported
		}
		indent, args = int(num.Int64), args[1:]
	case "nixStrs":
	default:
		if _, ok := valueEscapers[id.Ident]; !ok {
			return nil, false, nil
		}
	}
	if len(args) != 1 {
		return nil, false, errUnsupported
	}
	arg, err := c.operand(args[0])
	if err != nil {
		return nil, false, err
	}
	switch id.Ident {
	case "nixList":
		return func(s *state, dot reflect.Value) (string, error) {
			vs, err := typedArg[[]Value](arg, s, dot)
			if err != nil {
				return "", err
			}
			return nixList(indent, vs)
		}, true, nil
	case "nixStrs":
		return func(s *state, dot reflect.Value) (string, error) {
			vs, err := typedArg[[]Value](arg, s, dot)
			if err != nil {
				return "", err
			}
			return nixStrs(vs)
		}, true, nil
	}
	f := valueEscapers[id.Ident]
	return func(s *state, dot reflect.Value) (string, error) {
		v, err := typedArg[Value](arg, s, dot)
		if err != nil {
			return "", err
		}
		return f(v)
	}, true, nil
}

// typedArg evaluates an argument that must be exactly of type T (as
// text/template would pass it to a parameter of type T without conversion).
func typedArg[T any](arg eval, s *state, dot reflect.Value) (T, error) {
	var zero T
	v, err := arg(s, dot)
	if err != nil {
		return zero, err
	}
	if !v.IsValid() || v.Type() != reflect.TypeFor[T]() {
		return zero, errFallback
	}
	return v.Interface().(T), nil
}

// operand compiles ".", ".A.B", "$x.A" and "$".
func (c *compiler) operand(n parse.Node) (eval, error) {
	switch n := n.(type) {
	case *parse.DotNode:
		return func(_ *state, dot reflect.Value) (reflect.Value, error) { return dot, nil }, nil
	case *parse.FieldNode:
		chain := fieldChain(n.Ident)
		return func(_ *state, dot reflect.Value) (reflect.Value, error) { return chain.eval(dot) }, nil
	case *parse.VariableNode:
		name := n.Ident[0]
		chain := fieldChain(n.Ident[1:])
		return func(s *state, _ reflect.Value) (reflect.Value, error) {
			v, err := s.lookup(name)
			if err != nil {
				return v, err
			}
			return chain.eval(v)
		}, nil
	}
	return nil, errUnsupported
}

// field is one step of a field chain, with the index of the struct field
// it resolved to for the last receiver type it met.
type field struct {
	name  string
	cache atomic.Pointer[fieldIndex]
}

type fieldIndex struct {
	typ   reflect.Type
	index int // -1: the Value method Empty
}

type chain []*field

func fieldChain(names []string) chain {
	c := make(chain, len(names))
	for i, n := range names {
		c[i] = &field{name: n}
	}
	return c
}

func (c chain) eval(v reflect.Value) (reflect.Value, error) {
	for _, f := range c {
		var err error
		if v, err = f.eval(v); err != nil {
			return v, err
		}
	}
	return v, nil
}

// eval is text/template's evalField for the cases the templates use: a
// struct field through any number of pointers, or Value's Empty method.
// Everything else (methods, maps, nil pointers) falls back.
func (f *field) eval(v reflect.Value) (reflect.Value, error) {
	v = indirectInterface(v)
	for v.IsValid() && v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return reflect.Value{}, errFallback
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return reflect.Value{}, errFallback
	}
	t := v.Type()
	idx := f.cache.Load()
	if idx == nil || idx.typ != t {
		idx = resolve(t, f.name)
		if idx == nil {
			return reflect.Value{}, errFallback
		}
		f.cache.Store(idx)
	}
	if idx.index < 0 {
		return reflect.ValueOf(v.Interface().(Value).Empty()), nil
	}
	return v.Field(idx.index), nil
}

// resolve finds name on t the way text/template does (methods first, on
// the value or its pointer), accepting only Value.Empty and plain
// exported struct fields.
func resolve(t reflect.Type, name string) *fieldIndex {
	_, onValue := t.MethodByName(name)
	_, onPointer := reflect.PointerTo(t).MethodByName(name)
	if onValue || onPointer {
		if t == valueType && name == "Empty" {
			return &fieldIndex{typ: t, index: -1}
		}
		return nil
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	sf, ok := t.FieldByName(name)
	if !ok || !sf.IsExported() || len(sf.Index) != 1 {
		return nil
	}
	return &fieldIndex{typ: t, index: sf.Index[0]}
}

// isTrue is text/template's truth: false, 0, nil and empty are false.
func isTrue(v reflect.Value) (truth, ok bool) {
	if !v.IsValid() {
		return false, true
	}
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() > 0, true
	case reflect.Bool:
		return v.Bool(), true
	case reflect.Complex64, reflect.Complex128:
		return v.Complex() != 0, true
	case reflect.Chan, reflect.Func, reflect.Pointer, reflect.UnsafePointer, reflect.Interface:
		return !v.IsNil(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() != 0, true
	case reflect.Float32, reflect.Float64:
		return v.Float() != 0, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() != 0, true
	case reflect.Struct:
		return true, true
	}
	return false, false
}

// indirectInterface returns the value an interface holds.
func indirectInterface(v reflect.Value) reflect.Value {
	if v.Kind() != reflect.Interface || v.IsNil() {
		return v
	}
	return v.Elem()
}
