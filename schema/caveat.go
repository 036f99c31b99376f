package schema

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// This file compiles caveats (`caveat NAME(params) { CEL }`): parameter
// types, the CEL expression type-checked to bool, and the program evaluated per tuple.

// MaxCaveatCost bounds the CEL runtime cost of one caveat evaluation; an expression
// that exceeds it fails with an error naming the caveat.
const MaxCaveatCost = 1_000_000

// ParamType is a caveat parameter type: a scalar (any int uint bool string double bytes
// duration timestamp ipaddress) or list<T> / map<T> with Elem set.
type ParamType struct {
	Name string
	Elem *ParamType
}

// String prints the type as the schema writes it: `list<string>`.
func (t ParamType) String() string {
	if t.Elem != nil {
		return t.Name + "<" + t.Elem.String() + ">"
	}
	return t.Name
}

// Param is one caveat parameter.
type Param struct {
	Name string
	Type ParamType
}

// Caveat is a compiled caveat: its parameters and its CEL program. A Caveat is
// immutable and safe for concurrent use; it is compiled once per schema.
type Caveat struct {
	Name   string
	Params []Param
	// Expr is the CEL expression, as normalized by the parser.
	Expr string
	Pos  Position

	byName  map[string]ParamType
	program cel.Program
}

// Param returns the type of parameter name.
func (c *Caveat) Param(name string) (ParamType, bool) {
	t, ok := c.byName[name]
	return t, ok
}

// ipAddressType is the CEL type of `ipaddress` parameters.
var ipAddressType = cel.OpaqueType("ipaddress")

// IPAddress is the CEL value of an `ipaddress` parameter: `ip.in_cidr("10.0.0.0/8")`.
type IPAddress struct{ Addr netip.Addr }

// ConvertToNative implements ref.Val.
func (a IPAddress) ConvertToNative(t reflect.Type) (any, error) {
	if t.Kind() == reflect.String {
		return a.Addr.String(), nil
	}
	return a.Addr, nil
}

// ConvertToType implements ref.Val.
func (a IPAddress) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.StringType:
		return types.String(a.Addr.String())
	case types.TypeType:
		return ipAddressType
	}
	return types.NewErr("type conversion error from ipaddress to %s", t)
}

// Equal implements ref.Val.
func (a IPAddress) Equal(o ref.Val) ref.Val {
	b, ok := o.(IPAddress)
	if !ok {
		return types.False
	}
	return types.Bool(a.Addr == b.Addr)
}

// Type implements ref.Val.
func (a IPAddress) Type() ref.Type { return ipAddressType }

// Value implements ref.Val.
func (a IPAddress) Value() any { return a.Addr }

// celLibrary declares the `ipaddress` type, `ipaddress(string)` and `in_cidr`.
var celLibrary = []cel.EnvOption{
	cel.Types(ipAddressType),
	cel.Function("in_cidr",
		cel.MemberOverload("ipaddress_in_cidr_string", []*cel.Type{ipAddressType, cel.StringType}, cel.BoolType,
			cel.BinaryBinding(func(l, r ref.Val) ref.Val {
				ip, ok := l.(IPAddress)
				s, ok2 := r.Value().(string)
				if !ok || !ok2 {
					return types.NewErr("in_cidr: want ipaddress.in_cidr(string)")
				}
				p, err := netip.ParsePrefix(s)
				if err != nil {
					return types.NewErr("in_cidr: invalid CIDR %q", s)
				}
				return types.Bool(p.Contains(ip.Addr))
			}))),
	cel.Function("ipaddress",
		cel.Overload("string_to_ipaddress", []*cel.Type{cel.StringType}, ipAddressType,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				s, _ := v.Value().(string)
				a, err := netip.ParseAddr(s)
				if err != nil {
					return types.NewErr("ipaddress: invalid address %q", s)
				}
				return IPAddress{Addr: a}
			}))),
}

// scalarTypes are the parameter types without an element type.
var scalarTypes = map[string]*cel.Type{
	"any": cel.DynType, "int": cel.IntType, "uint": cel.UintType, "bool": cel.BoolType,
	"string": cel.StringType, "double": cel.DoubleType, "bytes": cel.BytesType,
	"duration": cel.DurationType, "timestamp": cel.TimestampType, "ipaddress": ipAddressType,
}

// paramTypeNames is the list quoted in errors.
const paramTypeNames = "any, int, uint, bool, string, double, bytes, duration, timestamp, ipaddress, list<T>, map<T>"

func (t ParamType) celType() *cel.Type {
	switch t.Name {
	case "list":
		return cel.ListType(t.Elem.celType())
	case "map":
		return cel.MapType(cel.StringType, t.Elem.celType())
	}
	return scalarTypes[t.Name]
}

// parseParamType parses `int`, `list<string>`, `map<list<int>>`.
func parseParamType(s string) (ParamType, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '<'); i >= 0 {
		name := strings.TrimSpace(s[:i])
		if name != "list" && name != "map" {
			return ParamType{}, fmt.Errorf("type %s takes no type argument (types: %s)", name, paramTypeNames)
		}
		if !strings.HasSuffix(s, ">") {
			return ParamType{}, fmt.Errorf("type %q: missing >", s)
		}
		elem, err := parseParamType(s[i+1 : len(s)-1])
		if err != nil {
			return ParamType{}, err
		}
		return ParamType{Name: name, Elem: &elem}, nil
	}
	if s == "list" || s == "map" {
		return ParamType{}, fmt.Errorf("type %s needs an element type: %s<T>", s, s)
	}
	if _, ok := scalarTypes[s]; !ok {
		return ParamType{}, fmt.Errorf("unknown parameter type %q (types: %s)", s, paramTypeNames)
	}
	return ParamType{Name: s}, nil
}

// parseParams parses `a int, b list<string>`.
func parseParams(s string) ([]Param, error) {
	var params []Param
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("a caveat needs at least one parameter")
	}
	depth, start := 0, 0
	var parts []string
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '<':
			depth++
		case '>':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	parts = append(parts, s[start:])
	seen := map[string]bool{}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		name, typ, ok := strings.Cut(p, " ")
		if !ok || name == "" {
			return nil, fmt.Errorf("parameter %q: want NAME TYPE", p)
		}
		if !validParamName(name) {
			return nil, fmt.Errorf("invalid parameter name %q: must match [a-zA-Z_][a-zA-Z0-9_]*", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("duplicate parameter %s", name)
		}
		seen[name] = true
		t, err := parseParamType(typ)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", name, err)
		}
		params = append(params, Param{Name: name, Type: t})
	}
	return params, nil
}

func validParamName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// compileCaveat type-checks d. Errors in the expression are reported at their
// line:column in the schema source.
func (c *compiler) compileCaveat(d *CaveatDecl) *Caveat {
	params, err := parseParams(d.Params)
	if err != nil {
		c.errorf(d.Name.Pos, "caveat %s: %v", d.Name.Name, err)
		return nil
	}
	cv := &Caveat{Name: d.Name.Name, Params: params, Expr: d.Body, Pos: d.Pos, byName: map[string]ParamType{}}
	opts := slices.Clone(celLibrary)
	for _, p := range params {
		cv.byName[p.Name] = p.Type
		opts = append(opts, cel.Variable(p.Name, p.Type.celType()))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		c.errorf(d.Name.Pos, "caveat %s: %v", d.Name.Name, err)
		return nil
	}
	src := d.rawBody
	if src == "" {
		src = d.Body
	}
	if strings.TrimSpace(src) == "" {
		c.errorf(d.Name.Pos, "caveat %s: empty expression (want a CEL expression of type bool)", d.Name.Name)
		return nil
	}
	ast, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		for _, e := range iss.Errors() {
			c.errorf(c.bodyPos(d, e.Location.Line(), e.Location.Column()), "caveat %s: %s", d.Name.Name, strings.TrimSuffix(e.Message, " (in container '')"))
		}
		return nil
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		c.errorf(d.bodyStart(), "caveat %s: expression has type %s, want bool", d.Name.Name, ast.OutputType())
		return nil
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptPartialEval), cel.CostLimit(MaxCaveatCost), cel.InterruptCheckFrequency(100))
	if err != nil {
		c.errorf(d.bodyStart(), "caveat %s: %v", d.Name.Name, err)
		return nil
	}
	cv.program = prg
	return cv
}

// bodyStart is where the caveat's expression begins in the source.
func (d *CaveatDecl) bodyStart() Position {
	if d.BodyPos.Line == 0 {
		return d.Pos
	}
	return d.BodyPos
}

// bodyPos maps a CEL location (line from 1, column from 0) to the schema source.
func (c *compiler) bodyPos(d *CaveatDecl, line, col int) Position {
	start := d.bodyStart()
	if line <= 1 {
		return Position{Line: start.Line, Column: start.Column + col}
	}
	return Position{Line: start.Line + line - 1, Column: col + 1}
}

// Result is the three-valued answer of a caveat: true, false, or conditional on the
// Missing parameters (sorted).
type Result struct {
	Value       bool
	Conditional bool
	Missing     []string
}

// ContextError is a context value that does not fit its parameter: a key the caveat
// lacks (for a tuple's stored context), or a value of the wrong type.
type ContextError struct {
	Caveat string
	Param  string
	Reason string
	// Stored: the value is part of a tuple's stored context (a write the schema
	// refuses), not of a request's context (a malformed request).
	Stored bool
}

func (e *ContextError) Error() string {
	return fmt.Sprintf("caveat %s: parameter %s: %s", e.Caveat, e.Param, e.Reason)
}

// EvalError is a CEL runtime error (including the cost limit).
type EvalError struct {
	Caveat string
	Err    error
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("caveat %s: evaluation failed: %v", e.Caveat, e.Err)
}
func (e *EvalError) Unwrap() error { return e.Err }

// ValidateContext checks a tuple's stored context: every key must be a parameter and
// every value must fit its type.
func (c *Caveat) ValidateContext(ctx map[string]any) error {
	for k, v := range ctx {
		t, ok := c.byName[k]
		if !ok {
			return &ContextError{Caveat: c.Name, Param: k, Reason: "the caveat has no such parameter (parameters: " + c.paramList() + ")", Stored: true}
		}
		if _, err := convertValue(t, v); err != nil {
			return &ContextError{Caveat: c.Name, Param: k, Reason: err.Error(), Stored: true}
		}
	}
	return nil
}

func (c *Caveat) paramList() string {
	var s []string
	for _, p := range c.Params {
		s = append(s, p.Name+" "+p.Type.String())
	}
	return strings.Join(s, ", ")
}

// Eval evaluates the caveat on stored merged with request (the stored value wins for a
// key in both; request keys that are not parameters are ignored). A parameter neither
// supplies leaves the result conditional on it, unless the expression does not depend
// on it. A value of the wrong type is a *ContextError, a runtime failure an *EvalError.
func (c *Caveat) Eval(ctx context.Context, stored, request map[string]any) (Result, error) {
	vars := make(map[string]any, len(c.Params))
	var unknown []*cel.AttributePatternType
	var unknownNames []string
	for _, p := range c.Params {
		v, ok := stored[p.Name]
		if !ok {
			v, ok = request[p.Name]
		}
		if !ok {
			unknown = append(unknown, cel.AttributePattern(p.Name))
			unknownNames = append(unknownNames, p.Name)
			continue
		}
		cv, err := convertValue(p.Type, v)
		if err != nil {
			return Result{}, &ContextError{Caveat: c.Name, Param: p.Name, Reason: err.Error()}
		}
		vars[p.Name] = cv
	}
	act, err := cel.PartialVars(vars, unknown...)
	if err != nil {
		return Result{}, &EvalError{Caveat: c.Name, Err: err}
	}
	out, _, err := c.program.ContextEval(ctx, act)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, &EvalError{Caveat: c.Name, Err: err}
	}
	if u, ok := out.(*types.Unknown); ok {
		missing := map[string]bool{}
		for _, id := range u.IDs() {
			trails, _ := u.GetAttributeTrails(id)
			for _, t := range trails {
				missing[t.Variable()] = true
			}
		}
		if len(missing) == 0 {
			for _, n := range unknownNames {
				missing[n] = true
			}
		}
		names := make([]string, 0, len(missing))
		for n := range missing {
			names = append(names, n)
		}
		sort.Strings(names)
		return Result{Conditional: true, Missing: names}, nil
	}
	b, ok := out.Value().(bool)
	if !ok {
		return Result{}, &EvalError{Caveat: c.Name, Err: fmt.Errorf("result %v is not a bool", out)}
	}
	return Result{Value: b}, nil
}

// convertValue converts a JSON-like context value (as decoded by encoding/json or
// structpb: float64, string, bool, nil, []any, map[string]any) to the CEL value of t.
func convertValue(t ParamType, v any) (any, error) {
	switch t.Name {
	case "any":
		return v, nil
	case "int":
		switch n := v.(type) {
		case float64:
			if n != math.Trunc(n) || n < math.MinInt64 || n >= math.MaxInt64 {
				return nil, fmt.Errorf("want an int, got %v", n)
			}
			return int64(n), nil
		case int64:
			return n, nil
		case int:
			return int64(n), nil
		}
	case "uint":
		switch n := v.(type) {
		case float64:
			if n != math.Trunc(n) || n < 0 || n >= math.MaxUint64 {
				return nil, fmt.Errorf("want a uint, got %v", n)
			}
			return uint64(n), nil
		case uint64:
			return n, nil
		case int64:
			if n >= 0 {
				return uint64(n), nil
			}
		case int:
			if n >= 0 {
				return uint64(n), nil
			}
		}
	case "double":
		switch n := v.(type) {
		case float64:
			return n, nil
		case int64:
			return float64(n), nil
		case int:
			return float64(n), nil
		}
	case "bool":
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case "string":
		if s, ok := v.(string); ok {
			return s, nil
		}
	case "bytes":
		switch b := v.(type) {
		case string:
			return []byte(b), nil
		case []byte:
			return b, nil
		}
	case "duration":
		switch d := v.(type) {
		case string:
			p, err := time.ParseDuration(d)
			if err != nil {
				return nil, fmt.Errorf("want a duration such as \"1h30m\", got %q", d)
			}
			return p, nil
		case time.Duration:
			return d, nil
		}
	case "timestamp":
		switch s := v.(type) {
		case string:
			p, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return nil, fmt.Errorf("want an RFC 3339 timestamp, got %q", s)
			}
			return p, nil
		case time.Time:
			return s, nil
		}
	case "ipaddress":
		if s, ok := v.(string); ok {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("want an IP address, got %q", s)
			}
			return IPAddress{Addr: a}, nil
		}
	case "list":
		if l, ok := v.([]any); ok {
			out := make([]any, len(l))
			for i, e := range l {
				c, err := convertValue(*t.Elem, e)
				if err != nil {
					return nil, fmt.Errorf("element %d: %w", i, err)
				}
				out[i] = c
			}
			return out, nil
		}
	case "map":
		if m, ok := v.(map[string]any); ok {
			out := make(map[string]any, len(m))
			for k, e := range m {
				c, err := convertValue(*t.Elem, e)
				if err != nil {
					return nil, fmt.Errorf("key %q: %w", k, err)
				}
				out[k] = c
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("want %s, got %s", t, describeValue(v))
}

func describeValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case float64:
		return fmt.Sprintf("number %v", v)
	case string:
		return fmt.Sprintf("string %q", v)
	case bool:
		return fmt.Sprintf("bool %v", v)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
