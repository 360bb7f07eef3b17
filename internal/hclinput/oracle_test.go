package hclinput

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// tokenDepth is the oracle for nativeDepth: the same count, made on the
// tokens of HCL's own lexer instead of on bytes. It is exact about what is
// a string, a heredoc or a comment, but allocates a token per byte or so,
// which is why CheckNative does not use it.
func tokenDepth(src []byte) int {
	toks, _ := hclsyntax.LexConfig(src, "o.hcl", hcl.InitialPos)
	type frame struct {
		level, open int
		closer      hclsyntax.TokenType
	}
	stack := []frame{{closer: hclsyntax.TokenEOF}}
	run, deepest := 0, 0
	for i, t := range toks {
		top := &stack[len(stack)-1]
		var closer hclsyntax.TokenType
		switch t.Type {
		case hclsyntax.TokenOBrace:
			closer = hclsyntax.TokenCBrace
		case hclsyntax.TokenOBrack:
			closer = hclsyntax.TokenCBrack
		case hclsyntax.TokenOParen:
			closer = hclsyntax.TokenCParen
		case hclsyntax.TokenOQuote:
			closer = hclsyntax.TokenCQuote
		case hclsyntax.TokenOHeredoc:
			closer = hclsyntax.TokenCHeredoc
		case hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			closer = hclsyntax.TokenTemplateSeqEnd
			if t.Type == hclsyntax.TokenTemplateControl {
				if i+1 < len(toks) && toks[i+1].Type == hclsyntax.TokenIdent &&
					(string(toks[i+1].Bytes) == "endif" || string(toks[i+1].Bytes) == "endfor") {
					top.open = max(top.open-1, 0)
				} else {
					top.open++
				}
			}
		case hclsyntax.TokenBang, hclsyntax.TokenMinus:
			run++
			deepest = max(deepest, top.level+top.open+run)
			continue
		case hclsyntax.TokenNewline, hclsyntax.TokenComment:
			continue
		case hclsyntax.TokenCBrace, hclsyntax.TokenTemplateSeqEnd:
			for j := len(stack) - 1; j > 0; j-- {
				if c := stack[j].closer; c == hclsyntax.TokenCBrace || c == hclsyntax.TokenTemplateSeqEnd {
					stack = stack[:j]
					break
				}
			}
			run = 0
			continue
		case hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc:
			if len(stack) > 1 && top.closer == t.Type {
				stack = stack[:len(stack)-1]
			}
			run = 0
			continue
		default:
			run = 0
			continue
		}
		level := top.level + top.open + run + 1
		deepest = max(deepest, level)
		stack = append(stack, frame{level: level, closer: closer})
		run = 0
	}
	return deepest
}

// seeds are inputs for FuzzNativeDepth and TestNativeDepthAgreesWithLexer:
// each mode HCL's lexer has, and the ways out of it.
var seeds = []string{
	"a = [1, [2, {b = (3)}]]\n",
	`a = "x[{(\"" + "${[1]}" + "$${[" + "%%{[" + "%{if a}[%{endif}"` + "\n",
	"a = <<EOT\n[{(\"\n  EOT x\n${[1]}EOT\n  EOT\nb = [[1]]\n",
	"a = <<-EOT\r\n[\r\nEOT\r\n[[]]\n",
	"# [[[\n// [[[\n/* [[[ */ a = [[1]]\n/* unterminated [[[",
	"a = \"unterminated [[[ \n [[[",
	"a = \"${ \"${ } [[[\" } [[[\"\n",
	"a = !-!-(1) - -1 != !true\n",
	"a = \"%{ for x in y }${x}%{ endfor }%{~ if a ~}b%{~ endif ~}\"\n",
	"a = { b = { c = [ { d = \"}\" } ] } }\n",
	"a = [ } ] ) [[[\n",
	"a = \"\\\\\" [[ \"\\\"[[\"\n",
	"a = <<E\n${<<F\n[[\nF\n}\nE\n",
	"a = foo-bar-baz ? x : y\n",
}

func TestNativeDepthAgreesWithLexer(t *testing.T) {
	for _, s := range append(seeds, deep["mixed"][:2000], deep["heredocs"][:2000]) {
		got, _, err := nativeDepth([]byte(s), math.MaxInt)
		if err != "" {
			t.Errorf("%q: %s", s, err)
			continue
		}
		if want := tokenDepth([]byte(s)); got < want {
			t.Errorf("%q: nativeDepth = %d, lexer's tokens nest %d deep", s, got, want)
		}
	}
}

// FuzzNativeDepth checks that the byte scanner never counts less than the
// count over HCL's own tokens: a lower count could let a file past the
// limit that crashes the parser.
func FuzzNativeDepth(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // CheckNative refuses it before counting
		}
		got, _, err := nativeDepth([]byte(s), math.MaxInt)
		if err != "" {
			if !strings.Contains(s, "<<") {
				t.Fatalf("heredoc error without a heredoc: %s", err)
			}
			return
		}
		if want := tokenDepth([]byte(s)); got < want {
			t.Fatalf("nativeDepth = %d, lexer's tokens nest %d deep", got, want)
		}
	})
}
