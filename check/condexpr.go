package check

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
)

// The condition of a conditional outcome.
//
// A caveated tuple whose caveat lacks parameters is an atom: its value is unknown, and
// it is a function of the missing parameters only (the request's context is fixed for
// the whole request, and the tuple's stored context wins over it). Two tuples with the
// same caveat and the same stored context are the same atom. Union, intersection,
// exclusion, arrows and usersets combine atoms into a boolean formula (cexpr), which a
// conditional outcome carries beside the plain union of its atoms' missing parameters.
//
// MissingContext lists exactly the parameters whose absence leaves the
// answer open. It is computed from the formula at the end of a check (resolve): an atom
// is essential when flipping it alone changes the formula's value for some values of
// the others; the answer's missing parameters are those of its essential atoms. A
// formula in which no atom is essential is not conditional at all: `viewer - banned`
// where both tuples carry the same caveat with the same stored context is false
// whatever the context says, and `a + a` needs only a's parameters. Atoms are treated as
// independent, so two different atoms over one parameter both count when either is
// essential: the list may be larger than the true minimum only through correlations
// between different caveat expressions, never smaller. Formulas of more than
// maxExactAtoms atoms fall back to the union of every atom's parameters.

// maxExactAtoms bounds the atoms whose truth table resolve enumerates (2^n rows).
const maxExactAtoms = 10

// cop is a cexpr operator.
type cop uint8

const (
	cAtom cop = iota
	cAnd
	cOr
	cNot
)

// cexpr is a boolean formula over caveat atoms. It is immutable once built.
type cexpr struct {
	op   cop
	atom *catom
	kids []*cexpr
}

// catom is one caveat instance whose value the context leaves open.
type catom struct {
	key     string   // caveat name and stored context: equal keys, equal values
	missing []string // the parameters it lacks, sorted
}

// newAtom is the formula of tuple caveat name with stored context stored, missing the
// parameters missing.
func newAtom(name string, stored map[string]any, missing []string) *cexpr {
	b, err := json.Marshal(stored) // sorted keys: a canonical form
	if err != nil {
		b = []byte(fmt.Sprintf("%v", stored))
	}
	return &cexpr{op: cAtom, atom: &catom{key: name + string(b), missing: missing}}
}

// cJoin combines formulas with op (cAnd or cOr); nil entries are ignored (they stand
// for the operator's identity), and a single formula is returned as is.
func cJoin(op cop, fs ...*cexpr) *cexpr {
	var kids []*cexpr
	for _, f := range fs {
		if f == nil {
			continue
		}
		if f.op == op {
			kids = append(kids, f.kids...)
			continue
		}
		kids = append(kids, f)
	}
	switch len(kids) {
	case 0:
		return nil
	case 1:
		return kids[0]
	}
	return &cexpr{op: op, kids: kids}
}

// cNegate is ¬f.
func cNegate(f *cexpr) *cexpr {
	if f.op == cNot {
		return f.kids[0]
	}
	return &cexpr{op: cNot, kids: []*cexpr{f}}
}

// condOf is the formula of outcome o as a conjunct or disjunct: o's formula when it is
// conditional, nil when it is decided (the caller has dealt with the decided values
// that decide the combination).
func condOf(o outcome) *cexpr {
	switch {
	case !o.cond:
		return nil
	case o.f != nil:
		return o.f
	}
	// A conditional outcome without a formula (none is built so today) is an atom of
	// its own, equal to no other.
	a := &catom{missing: o.missing}
	a.key = fmt.Sprintf("opaque@%p", a)
	return &cexpr{op: cAtom, atom: a}
}

// eval evaluates f with atom i (by index in idx) set to bit i of row.
func (f *cexpr) eval(idx map[string]int, row uint32) bool {
	switch f.op {
	case cAtom:
		return row&(1<<idx[f.atom.key]) != 0
	case cAnd:
		for _, k := range f.kids {
			if !k.eval(idx, row) {
				return false
			}
		}
		return true
	case cOr:
		for _, k := range f.kids {
			if k.eval(idx, row) {
				return true
			}
		}
		return false
	default:
		return !f.kids[0].eval(idx, row)
	}
}

// atoms appends f's distinct atoms to into (by key).
func (f *cexpr) atoms(into []*catom, seen map[string]bool) []*catom {
	if f.op == cAtom {
		if !seen[f.atom.key] {
			seen[f.atom.key] = true
			into = append(into, f.atom)
		}
		return into
	}
	for _, k := range f.kids {
		into = k.atoms(into, seen)
	}
	return into
}

// resolve decides a conditional outcome from its formula: when no atom is essential
// the answer is the formula's constant value, no longer conditional; otherwise it is
// conditional on the parameters of the essential atoms.
func (o outcome) resolve() outcome {
	if !o.cond || o.f == nil {
		return o
	}
	as := o.f.atoms(nil, map[string]bool{})
	if len(as) > maxExactAtoms {
		var all []string
		for _, a := range as {
			all = append(all, a.missing...)
		}
		sort.Strings(all)
		o.missing = slices.Compact(all)
		return o
	}
	idx := make(map[string]int, len(as))
	for i, a := range as {
		idx[a.key] = i
	}
	essential := make([]bool, len(as))
	rows := uint32(1) << len(as)
	first := o.f.eval(idx, 0)
	constant := true
	for row := uint32(0); row < rows; row++ {
		v := o.f.eval(idx, row)
		if v != first {
			constant = false
		}
		for i := range as {
			bit := uint32(1) << i
			if row&bit != 0 || essential[i] {
				continue // each pair of rows once
			}
			if o.f.eval(idx, row|bit) != v {
				essential[i] = true
			}
		}
	}
	if constant {
		o.cond, o.ok, o.missing, o.f = false, first, nil, nil
		if o.exp != nil {
			o.exp.Conditional, o.exp.Missing, o.exp.Result = false, nil, first
		}
		return o
	}
	var missing []string
	for i, a := range as {
		if essential[i] {
			missing = append(missing, a.missing...)
		}
	}
	sort.Strings(missing)
	o.missing = slices.Compact(missing)
	if o.exp != nil {
		o.exp.Missing = o.missing
	}
	return o
}
