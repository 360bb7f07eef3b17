package hclinput

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
)

// nest returns open×n + inner + close×n.
func nest(open, inner, close string, n int) string {
	return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
}

// levels is how deeply the inputs of deep nest. At 200,000 levels each of
// them crashes HCL's native parser with a stack overflow (the registry and
// hostconfig tests show it for brackets); a few thousand are enough to show
// the count, and quick to scan under -race.
const levels = 5_000

// deep has one input per construct the count knows.
var deep = map[string]string{
	"brackets":     "x = " + nest("[", "", "]", levels) + "\n",
	"braces":       "x = " + nest("{a = ", "1", "}", levels) + "\n",
	"parentheses":  "x = " + nest("(", "1", ")", levels) + "\n",
	"not":          "x = " + strings.Repeat("!", levels) + "true\n",
	"minus":        "x = " + strings.Repeat("- ", levels) + "1\n",
	"templates":    "x = " + nest(`"${`, "1", `}"`, levels) + "\n",
	"directives":   `x = "` + nest("%{if true}", "", "%{endif}", levels) + "\"\n",
	"heredocs":     "x = " + nest("<<E\n${", "1", "}\nE\n", levels) + "\n",
	"block bodies": nest("b {\n", "", "}\n", levels),
	"mixed":        "x = " + nest(`[!("${-{a = <<E`+"\n"+`%{for x in y}${`, "1", "}%{endfor}\nE\n}}\")]", levels) + "\n",
}

func TestCheckNativeRefusesDeepNesting(t *testing.T) {
	for name, src := range deep {
		t.Run(name, func(t *testing.T) {
			diags := CheckNative("deep.hcl", []byte(src), 8<<20)
			if !diags.HasErrors() || diags[0].Summary != "Nesting too deep" {
				t.Fatalf("diags = %v, want Nesting too deep", diags)
			}
			if s := diags[0].Subject; s == nil || s.Filename != "deep.hcl" || s.Start.Line < 1 || s.Start.Column < 1 {
				t.Fatalf("subject = %v, want a position in deep.hcl", s)
			}
		})
	}
}

func TestCheckNativePosition(t *testing.T) {
	src := "a = 1\n# [[[[ a comment\nb = \"[[[[\"\nc = " + nest("[", "", "]", MaxDepth+5) + "\n"
	diags := CheckNative("f.hcl", []byte(src), 1<<20)
	if !diags.HasErrors() {
		t.Fatal("no diagnostic")
	}
	// The opener of level MaxDepth+1 is on line 4 after "c = " and MaxDepth brackets.
	if s := diags[0].Subject; s.Start.Line != 4 || s.Start.Column != 5+MaxDepth {
		t.Errorf("position %d:%d, want 4:%d", s.Start.Line, s.Start.Column, 5+MaxDepth)
	}
}

func TestCheckNativeAcceptsWhatIsNotDeep(t *testing.T) {
	for name, src := range map[string]string{
		"limit":                "x = " + nest("[", "", "]", MaxDepth-1) + "\n",
		"long flat list":       "x = [" + strings.Repeat(`"a", `, 50_000) + "]\n",
		"brackets in strings":  "x = \"" + strings.Repeat("[{(", 10_000) + "\"\n",
		"brackets in heredoc":  "x = <<EOT\n" + strings.Repeat("[{(\"", 10_000) + "\nEOT\n",
		"brackets in comment":  "/* " + strings.Repeat("[{(", 10_000) + " */\n# " + strings.Repeat("[", 10_000) + "\n",
		"sequential templates": "x = \"" + strings.Repeat("${a}%{if b}c%{endif}", 10_000) + "\"\n",
		"binary minus":         "x = 1" + strings.Repeat(" - 1", 10_000) + "\n",
		"devhost.hcl":          "public_address = \"h.example\"\naccess {\n  groups = [\"users\"]\n}\ncommands {\n  rebuild = [\"a\", \"-b\"]\n}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if diags := CheckNative("ok.hcl", []byte(src), 8<<20); diags.HasErrors() {
				t.Fatalf("refused: %v", diags)
			}
		})
	}
}

// An unmatched closer must not close the frame of a string or template
// the lexer is still in: the count would fall below the parser's depth.
func TestCheckNativeMismatchedClosersDoNotLowerTheCount(t *testing.T) {
	src := "x = \"${" + strings.Repeat(")", 1000) + strings.Repeat("]", 1000) + nest("[", "", "]", MaxDepth) + "}\"\n"
	if diags := CheckNative("m.hcl", []byte(src), 1<<20); !diags.HasErrors() {
		t.Fatal("accepted")
	}
}

func TestCheckJSON(t *testing.T) {
	for name, tc := range map[string]struct {
		src  string
		deep bool
	}{
		"arrays":              {nest("[", "", "]", 200_000), true},
		"objects":             {`{"a":` + nest(`{"a":`, "1", "}", 200_000) + "}", true},
		"limit":               {`{"a":` + nest("[", "", "]", MaxDepth-1) + "}", false},
		"brackets in strings": {`{"a": "` + strings.Repeat(`[{\"`, 10_000) + `"}`, false},
		"escaped backslash":   {`{"a": "\\"` + nest(", [", "", "]", MaxDepth+1) + "}", true},
	} {
		t.Run(name, func(t *testing.T) {
			diags := CheckJSON("c.json", []byte(tc.src), 8<<20)
			if diags.HasErrors() != tc.deep {
				t.Fatalf("diags = %v, want refused=%v", diags, tc.deep)
			}
			if !tc.deep {
				// What is accepted parses without trouble.
				hcljson.Parse([]byte(tc.src), "c.json")
			}
		})
	}
}

func TestCheckSize(t *testing.T) {
	for _, check := range []func(string, []byte, int) hcl.Diagnostics{CheckNative, CheckJSON} {
		diags := check("big.hcl", make([]byte, 101), 100)
		if !diags.HasErrors() || diags[0].Summary != "File too large" {
			t.Errorf("diags = %v, want File too large", diags)
		}
	}
}

// Whatever CheckNative accepts, HCL parses without running out of stack;
// inputs near the limit of every construct must parse.
func TestAcceptedNearLimitParses(t *testing.T) {
	for name, src := range map[string]string{
		"brackets":  "x = " + nest("[", "", "]", MaxDepth-1) + "\n",
		"templates": "x = " + nest(`"${`, "1", `}"`, MaxDepth/2-1) + "\n",
	} {
		if diags := CheckNative("n.hcl", []byte(src), 1<<20); diags.HasErrors() {
			t.Fatalf("%s: refused: %v", name, diags)
		}
		if _, diags := hclsyntax.ParseConfig([]byte(src), "n.hcl", hcl.InitialPos); diags.HasErrors() {
			t.Fatalf("%s: %v", name, diags)
		}
	}
}

func TestCheckNativeRefusesInvalidUTF8(t *testing.T) {
	diags := CheckNative("u.hcl", []byte("a = 1\nb = \xc6\"!!\n"), 1<<20)
	if !diags.HasErrors() || diags[0].Summary != "Invalid UTF-8" || diags[0].Subject.Start.Line != 2 || diags[0].Subject.Start.Column != 5 {
		t.Fatalf("diags = %v, want Invalid UTF-8 at 2:5", diags)
	}
}
