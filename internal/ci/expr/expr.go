// Package expr parses and evaluates Azure Pipelines expressions: the
// language of `${{ }}` template expressions and of `condition:`. It has
// literals ('text', numbers, true, false, null), property access
// (variables['Build.SourceBranch'], parameters.name), and function calls
// (eq, and, contains, succeeded(), ...); there are no operators.
// Comparisons follow Azure's rules: the right side is converted to the
// left side's type, and strings compare without regard to case.
package expr

import (
	"fmt"
	"strconv"
	"strings"
)

// Node is a parsed expression.
type Node interface {
	eval(ctx *Context) (any, error)
}

// Context gives an expression its named values and the job status the
// status functions (succeeded(), failed(), ...) read.
type Context struct {
	// Values are the roots: "variables", "parameters", and others. Maps
	// are looked up without regard to case.
	Values map[string]any
	// Status is the state of the job or stage so far: "Succeeded",
	// "SucceededWithIssues", "Failed" or "Canceled". Empty means the
	// status functions are not available here (template expressions).
	Status string
	// Counter gives counter(prefix, seed) its next value; nil where the
	// function is not available (anywhere but a variable's $[ ]).
	Counter func(prefix string, seed int) (int, error)
}

// Error is a syntax or evaluation error, with the expression it is about.
type Error struct {
	Expr string
	Pos  int
	Msg  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("expression %q: %s", e.Expr, e.Msg)
}

// Parse parses one expression.
func Parse(src string) (Node, error) {
	p := &parser{src: src}
	p.next()
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokEOF {
		return nil, p.errorf("unexpected %q after the expression", p.tok.text)
	}
	return n, nil
}

// Eval parses and evaluates an expression.
func Eval(src string, ctx *Context) (any, error) {
	n, err := Parse(src)
	if err != nil {
		return nil, err
	}
	v, err := n.eval(ctx)
	if err != nil {
		if e, ok := err.(*Error); ok && e.Expr == "" {
			e.Expr = src
		}
		return nil, err
	}
	return v, nil
}

// EvalBool evaluates an expression and says whether its value is truthy.
func EvalBool(src string, ctx *Context) (bool, error) {
	v, err := Eval(src, ctx)
	if err != nil {
		return false, err
	}
	return Truthy(v), nil
}

// --- lexer

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokNumber
	tokPunct
)

type token struct {
	kind tokKind
	text string
	pos  int
}

type parser struct {
	src string
	pos int
	tok token
	err error
}

func (p *parser) errorf(format string, args ...any) error {
	return &Error{Expr: p.src, Pos: p.tok.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) next() {
	for p.pos < len(p.src) && strings.ContainsRune(" \t\r\n", rune(p.src[p.pos])) {
		p.pos++
	}
	start := p.pos
	if p.pos >= len(p.src) {
		p.tok = token{tokEOF, "", start}
		return
	}
	c := p.src[p.pos]
	switch {
	case c == '\'':
		var b strings.Builder
		p.pos++
		for {
			if p.pos >= len(p.src) {
				p.err = &Error{Expr: p.src, Pos: start, Msg: "unterminated string"}
				p.tok = token{tokEOF, "", start}
				return
			}
			if p.src[p.pos] == '\'' {
				if p.pos+1 < len(p.src) && p.src[p.pos+1] == '\'' { // '' is a quote
					b.WriteByte('\'')
					p.pos += 2
					continue
				}
				p.pos++
				break
			}
			b.WriteByte(p.src[p.pos])
			p.pos++
		}
		p.tok = token{tokString, b.String(), start}
	case c >= '0' && c <= '9' || c == '-' && p.pos+1 < len(p.src) && p.src[p.pos+1] >= '0' && p.src[p.pos+1] <= '9':
		p.pos++
		for p.pos < len(p.src) && strings.ContainsRune("0123456789.-+eExabcdefABCDEF", rune(p.src[p.pos])) {
			p.pos++
		}
		p.tok = token{tokNumber, p.src[start:p.pos], start}
	case isIdentStart(c):
		for p.pos < len(p.src) && (isIdentStart(p.src[p.pos]) || p.src[p.pos] >= '0' && p.src[p.pos] <= '9' || p.src[p.pos] == '-') {
			p.pos++
		}
		p.tok = token{tokIdent, p.src[start:p.pos], start}
	default:
		p.pos++
		p.tok = token{tokPunct, string(c), start}
	}
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// --- parser

type literal struct{ v any }
type root struct{ name string }
type index struct {
	target Node
	key    Node
}
type call struct {
	name string
	args []Node
}

func (p *parser) expr() (Node, error) {
	if p.err != nil {
		return nil, p.err
	}
	var n Node
	switch p.tok.kind {
	case tokString:
		n = literal{p.tok.text}
		p.next()
	case tokNumber:
		text := p.tok.text
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			if i, ierr := strconv.ParseInt(text, 0, 64); ierr == nil {
				f = float64(i)
			} else {
				return nil, p.errorf("%q is not a number", text)
			}
		}
		n = literal{f}
		p.next()
	case tokIdent:
		name := p.tok.text
		p.next()
		switch {
		case p.tok.kind == tokPunct && p.tok.text == "(":
			p.next()
			var args []Node
			for !(p.tok.kind == tokPunct && p.tok.text == ")") {
				if len(args) > 0 {
					if !(p.tok.kind == tokPunct && p.tok.text == ",") {
						return nil, p.errorf("expected ',' or ')' in the arguments of %s", name)
					}
					p.next()
				}
				a, err := p.expr()
				if err != nil {
					return nil, err
				}
				args = append(args, a)
			}
			p.next()
			if err := checkArity(name, len(args)); err != nil {
				return nil, &Error{Expr: p.src, Msg: err.Error()}
			}
			n = call{strings.ToLower(name), args}
		case strings.EqualFold(name, "true"):
			n = literal{true}
		case strings.EqualFold(name, "false"):
			n = literal{false}
		case strings.EqualFold(name, "null"):
			n = literal{nil}
		default:
			n = root{name}
		}
	case tokPunct:
		if p.tok.text == "(" {
			p.next()
			inner, err := p.expr()
			if err != nil {
				return nil, err
			}
			if !(p.tok.kind == tokPunct && p.tok.text == ")") {
				return nil, p.errorf("expected ')'")
			}
			p.next()
			n = inner
			break
		}
		return nil, p.errorf("unexpected %q", p.tok.text)
	default:
		if p.err != nil {
			return nil, p.err
		}
		return nil, p.errorf("the expression ends too early")
	}
	// Property access: .name and [expr], any number of times.
	for p.tok.kind == tokPunct && (p.tok.text == "." || p.tok.text == "[") {
		if p.tok.text == "." {
			p.next()
			if p.tok.kind != tokIdent && p.tok.kind != tokNumber {
				return nil, p.errorf("expected a property name after '.'")
			}
			n = index{n, literal{p.tok.text}}
			p.next()
			continue
		}
		p.next()
		key, err := p.expr()
		if err != nil {
			return nil, err
		}
		if !(p.tok.kind == tokPunct && p.tok.text == "]") {
			return nil, p.errorf("expected ']'")
		}
		p.next()
		n = index{n, key}
	}
	return n, nil
}

// --- evaluation

func (l literal) eval(*Context) (any, error) { return l.v, nil }

func (r root) eval(ctx *Context) (any, error) {
	if ctx != nil {
		for k, v := range ctx.Values {
			if strings.EqualFold(k, r.name) {
				return v, nil
			}
		}
	}
	return nil, &Error{Msg: fmt.Sprintf("unrecognized value %q (known here: variables, parameters and functions)", r.name)}
}

func (i index) eval(ctx *Context) (any, error) {
	t, err := i.target.eval(ctx)
	if err != nil {
		return nil, err
	}
	k, err := i.key.eval(ctx)
	if err != nil {
		return nil, err
	}
	switch t := t.(type) {
	case map[string]any:
		key := String(k)
		if v, ok := t[key]; ok {
			return v, nil
		}
		for name, v := range t {
			if strings.EqualFold(name, key) {
				return v, nil
			}
		}
		return nil, nil
	case []any:
		n, ok := toNumber(k)
		if !ok || n < 0 || int(n) >= len(t) {
			return nil, nil
		}
		return t[int(n)], nil
	}
	return nil, nil
}

// Truthy is Azure's truth: null, false, 0 and ” are false.
func Truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case float64:
		return v != 0
	case int:
		return v != 0
	case string:
		return v != ""
	}
	return true
}

// String converts a value to text the way Azure does: True and False,
// numbers without needless zeros, null as ”.
func String(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case bool:
		if v {
			return "True"
		}
		return "False"
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		return strconv.Itoa(v)
	case string:
		return v
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = String(x)
		}
		return strings.Join(parts, ",")
	case map[string]any:
		return "Object"
	}
	return fmt.Sprint(v)
}

func toNumber(v any) (float64, bool) {
	switch v := v.(type) {
	case nil:
		return 0, true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	case float64:
		return v, true
	case int:
		return float64(v), true
	case string:
		s := strings.TrimSpace(v)
		if s == "" {
			return 0, true
		}
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	}
	return 0, false
}

// compare returns -1, 0 or 1, converting b to a's type; ok is false when
// the values cannot be compared.
func compare(a, b any) (int, bool) {
	switch av := a.(type) {
	case nil:
		if b == nil {
			return 0, true
		}
		return compare(String(a), b)
	case bool:
		bv := Truthy(b)
		if s, ok := b.(string); ok {
			bv = strings.EqualFold(s, "true")
		}
		switch {
		case av == bv:
			return 0, true
		case !av:
			return -1, true
		}
		return 1, true
	case float64, int:
		an, _ := toNumber(av)
		bn, ok := toNumber(b)
		if !ok {
			return 0, false
		}
		switch {
		case an < bn:
			return -1, true
		case an > bn:
			return 1, true
		}
		return 0, true
	case string:
		c := strings.Compare(strings.ToLower(av), strings.ToLower(String(b)))
		return c, true
	}
	return 0, false
}

func equal(a, b any) bool {
	c, ok := compare(a, b)
	return ok && c == 0
}

var arity = map[string][2]int{ // min, max (-1: any)
	"and": {2, -1}, "or": {2, -1}, "not": {1, 1}, "xor": {2, 2},
	"eq": {2, 2}, "ne": {2, 2}, "gt": {2, 2}, "ge": {2, 2}, "lt": {2, 2}, "le": {2, 2},
	"contains": {2, 2}, "startswith": {2, 2}, "endswith": {2, 2}, "containsvalue": {2, 2},
	"in": {1, -1}, "notin": {1, -1}, "format": {1, -1}, "join": {2, 2}, "coalesce": {1, -1},
	"lower": {1, 1}, "upper": {1, 1}, "length": {1, 1}, "replace": {3, 3}, "split": {2, 2},
	"iif": {3, 3}, "trim": {1, 1}, "counter": {2, 2},
	"succeeded": {0, 0}, "failed": {0, 0}, "always": {0, 0}, "canceled": {0, 0}, "succeededorfailed": {0, 0},
}

func checkArity(name string, n int) error {
	a, ok := arity[strings.ToLower(name)]
	if !ok {
		return fmt.Errorf("unknown function %s()", name)
	}
	if n < a[0] || a[1] >= 0 && n > a[1] {
		if a[0] == a[1] {
			return fmt.Errorf("%s() takes %d arguments, not %d", name, a[0], n)
		}
		return fmt.Errorf("%s() takes at least %d arguments, not %d", name, a[0], n)
	}
	return nil
}

func (c call) eval(ctx *Context) (any, error) {
	// and/or short-circuit; everything else evaluates its arguments first.
	switch c.name {
	case "and", "or":
		for _, a := range c.args {
			v, err := a.eval(ctx)
			if err != nil {
				return nil, err
			}
			if Truthy(v) != (c.name == "and") {
				return c.name == "or", nil
			}
		}
		return c.name == "and", nil
	case "succeeded", "failed", "always", "canceled", "succeededorfailed":
		if ctx == nil || ctx.Status == "" {
			return nil, &Error{Msg: c.name + "() is only available in a condition"}
		}
		s := ctx.Status
		switch c.name {
		case "succeeded":
			return s == "Succeeded" || s == "SucceededWithIssues", nil
		case "failed":
			return s == "Failed", nil
		case "canceled":
			return s == "Canceled", nil
		case "succeededorfailed":
			return s != "Canceled", nil
		}
		return true, nil
	}
	args := make([]any, len(c.args))
	for i, a := range c.args {
		v, err := a.eval(ctx)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	switch c.name {
	case "not":
		return !Truthy(args[0]), nil
	case "xor":
		return Truthy(args[0]) != Truthy(args[1]), nil
	case "eq":
		return equal(args[0], args[1]), nil
	case "ne":
		return !equal(args[0], args[1]), nil
	case "gt", "ge", "lt", "le":
		r, ok := compare(args[0], args[1])
		if !ok {
			return nil, &Error{Msg: fmt.Sprintf("%s() cannot compare %q with %q", c.name, String(args[0]), String(args[1]))}
		}
		return map[string]bool{"gt": r > 0, "ge": r >= 0, "lt": r < 0, "le": r <= 0}[c.name], nil
	case "contains":
		if list, ok := args[0].([]any); ok {
			for _, x := range list {
				if equal(x, args[1]) {
					return true, nil
				}
			}
			return false, nil
		}
		return strings.Contains(strings.ToLower(String(args[0])), strings.ToLower(String(args[1]))), nil
	case "containsvalue":
		switch coll := args[0].(type) {
		case []any:
			for _, x := range coll {
				if equal(x, args[1]) {
					return true, nil
				}
			}
		case map[string]any:
			for _, x := range coll {
				if equal(x, args[1]) {
					return true, nil
				}
			}
		}
		return false, nil
	case "startswith":
		return strings.HasPrefix(strings.ToLower(String(args[0])), strings.ToLower(String(args[1]))), nil
	case "endswith":
		return strings.HasSuffix(strings.ToLower(String(args[0])), strings.ToLower(String(args[1]))), nil
	case "in", "notin":
		found := false
		for _, x := range args[1:] {
			found = found || equal(args[0], x)
		}
		return found == (c.name == "in"), nil
	case "format":
		return format(String(args[0]), args[1:])
	case "join":
		list, ok := args[1].([]any)
		if !ok {
			return String(args[1]), nil
		}
		parts := make([]string, len(list))
		for i, x := range list {
			parts[i] = String(x)
		}
		return strings.Join(parts, String(args[0])), nil
	case "coalesce":
		for _, x := range args {
			if x != nil && x != "" {
				return x, nil
			}
		}
		return nil, nil
	case "lower":
		return strings.ToLower(String(args[0])), nil
	case "upper":
		return strings.ToUpper(String(args[0])), nil
	case "trim":
		return strings.TrimSpace(String(args[0])), nil
	case "length":
		switch v := args[0].(type) {
		case []any:
			return float64(len(v)), nil
		case map[string]any:
			return float64(len(v)), nil
		}
		return float64(len(String(args[0]))), nil
	case "replace":
		return strings.ReplaceAll(String(args[0]), String(args[1]), String(args[2])), nil
	case "split":
		parts := strings.Split(String(args[0]), String(args[1]))
		out := make([]any, len(parts))
		for i, s := range parts {
			out[i] = s
		}
		return out, nil
	case "iif":
		if Truthy(args[0]) {
			return args[1], nil
		}
		return args[2], nil
	case "counter":
		if ctx.Counter == nil {
			return nil, &Error{Msg: "counter() is available only in a variable's $[ ] runtime expression"}
		}
		seed, ok := toNumber(args[1])
		if !ok || seed != float64(int(seed)) {
			return nil, &Error{Msg: fmt.Sprintf("counter(): the seed %q is not a whole number", String(args[1]))}
		}
		n, err := ctx.Counter(String(args[0]), int(seed))
		if err != nil {
			return nil, &Error{Msg: "counter(): " + err.Error()}
		}
		return n, nil
	}
	return nil, &Error{Msg: "unknown function " + c.name + "()"}
}

// format replaces {0}, {1}, ... with the arguments; {{ and }} are braces.
func format(f string, args []any) (any, error) {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		switch {
		case f[i] == '{' && i+1 < len(f) && f[i+1] == '{':
			b.WriteByte('{')
			i++
		case f[i] == '}' && i+1 < len(f) && f[i+1] == '}':
			b.WriteByte('}')
			i++
		case f[i] == '{':
			end := strings.IndexByte(f[i:], '}')
			if end < 0 {
				return nil, &Error{Msg: "format(): unclosed '{'"}
			}
			n, err := strconv.Atoi(f[i+1 : i+end])
			if err != nil || n < 0 || n >= len(args) {
				return nil, &Error{Msg: fmt.Sprintf("format(): no argument for %s", f[i:i+end+1])}
			}
			b.WriteString(String(args[n]))
			i += end
		default:
			b.WriteByte(f[i])
		}
	}
	return b.String(), nil
}
