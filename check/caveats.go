package check

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/relata/relata/tuples"
)

// Caveats and expiring tuples are evaluated three-valued: an outcome is
// true, false, or conditional on missing caveat parameters (outcome.cond). Stored
// relations that allow a caveat or an expiration are "conditional" (schema
// Relation.Conditional): the engine reads them tuple by tuple here, never through
// the reverse-index shortcuts (graph.go marks them non-monotone). An answer that
// followed a caveated tuple is volatile: it depends on the request's context, and the
// shared cache keeps it by the values of the parameters it can read (see cacheCtx). An
// answer that read an expiring tuple holds at its own revision only (its deps). Every
// other answer is cached as before, whatever the request's context.

// setContext records the request's caveat context.
func (q *request) setContext(c map[string]any) {
	if len(c) == 0 {
		return
	}
	q.context = c
	b, err := json.Marshal(c) // sorted keys: a canonical form
	if err != nil {
		b = []byte(fmt.Sprintf("%v", c))
	}
	q.ctxKey = "@ctx" + string(b)
}

// cacheCtx is the suffix of node k's cache keys for answers that depended on the
// context: the request's values of the caveat parameters reachable from k, as
// canonical JSON (sorted keys, nested values included, so that contexts differing
// anywhere inside a value never share an entry). Values of other parameters cannot
// change the answer and are left out, so requests that differ only in them share it.
// can is false for a node from which no conditional relation is reachable.
func (q *request) cacheCtx(k relKey) (suffix string, can bool) {
	params, can := q.c.ctxParams[k]
	if !can {
		return "", false
	}
	q.ctxKeys.Lock()
	defer q.ctxKeys.Unlock()
	if s, ok := q.ctxKeys.byNode[k]; ok {
		return s, true
	}
	used := make(map[string]any, len(params))
	for _, p := range params {
		if v, ok := q.context[p]; ok {
			used[p] = v
		}
	}
	b, err := json.Marshal(used)
	if err != nil {
		return "", false
	}
	if q.ctxKeys.byNode == nil {
		q.ctxKeys.byNode = make(map[relKey]string)
	}
	s := "@ctx" + string(b)
	q.ctxKeys.byNode[k] = s
	return s, true
}

// unionMissing returns the sorted union of two sorted name lists.
func unionMissing(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// caveatOutcome evaluates t's caveat on its stored context and the request's.
func (q *request) caveatOutcome(ctx context.Context, t tuples.Tuple) (outcome, error) {
	cv := q.c.s.Caveats[t.Caveat.Name]
	if cv == nil {
		return outcome{}, fmt.Errorf("tuple %s names caveat %s, which the schema does not define", t, t.Caveat.Name)
	}
	res, err := cv.Eval(ctx, t.Caveat.Context, q.context)
	if err != nil {
		return outcome{}, err
	}
	out := outcome{ok: res.Value, cond: res.Conditional, missing: res.Missing, volatile: true}
	if res.Conditional {
		out.f = newAtom(cv.Name, t.Caveat.Context, res.Missing)
	}
	if q.explain {
		note := "caveat " + cv.Name + " { " + strings.ReplaceAll(cv.Expr, "\n", " ") + " }"
		var vals []string
		for _, p := range cv.Params {
			v, ok := t.Caveat.Context[p.Name]
			src := "stored"
			if !ok {
				v, ok = q.context[p.Name]
				src = "request"
			}
			if ok {
				b, _ := json.Marshal(v)
				vals = append(vals, p.Name+"="+string(b)+" ("+src+")")
			}
		}
		if len(vals) > 0 {
			note += " with " + strings.Join(vals, ", ")
		}
		switch {
		case res.Conditional:
			note += " → conditional (missing: " + strings.Join(res.Missing, ", ") + ")"
		case res.Value:
			note += " → true"
		default:
			note += " → false"
		}
		out = finish(&Explanation{Step: "caveat " + cv.Name}, out, note)
	}
	return out, nil
}

// and combines a tuple's caveat outcome with the outcome of what the tuple leads to.
func and(a, b outcome) outcome {
	var out outcome
	switch {
	case !a.ok && !a.cond, !b.ok && !b.cond:
	case a.cond || b.cond:
		out.cond = true
		out.missing = unionMissing(a.missing, b.missing)
		out.f = cJoin(cAnd, condOf(a), condOf(b))
	default:
		out.ok = true
	}
	out.merge(a)
	out.merge(b)
	out.volatile = true
	return out
}

// viaCaveat is the outcome of following tuple t, whose caveat must hold too: next
// runs only when the caveat is not false.
func (q *request) viaCaveat(ctx context.Context, t tuples.Tuple, next func(context.Context) (outcome, error)) (outcome, error) {
	cv, err := q.caveatOutcome(ctx, t)
	if err != nil {
		return outcome{}, err
	}
	var sub outcome
	if cv.ok || cv.cond {
		if sub, err = next(ctx); err != nil {
			return outcome{}, err
		}
	}
	out := and(cv, sub)
	if q.explain {
		return finish(&Explanation{Step: t.String()}, out, "", cv.exp, sub.exp), nil
	}
	return out, nil
}

// thisConditional evaluates a stored relation whose tuples may carry caveats or
// expire, tuple by tuple (the store hides expired tuples): the subject directly, a
// wildcard of its type, or a userset that holds it, each under its tuple's caveat.
func (q *request) thisConditional(ctx context.Context, pos at, obj tuples.ObjectRef, rel string, subj tuples.SubjectRef) (outcome, error) {
	exp := q.explainNode(rel)
	q.readForward(pos.f, obj, rel)
	tasks := func(yield func(task, error) bool) {
		for t, err := range q.r.Subjects(ctx, obj, rel, "") {
			if err != nil {
				yield(nil, fmt.Errorf("reading %s#%s: %w", obj, rel, err))
				return
			}
			if !t.ExpiresAt.IsZero() && pos.f != nil {
				// Visible at this revision, gone at some later one although no write
				// touches its scope: the answer holds at this revision only.
				pos.f.deps.markOver()
			}
			s := t.Subject
			var next func(context.Context) (outcome, error)
			switch {
			case s == subj, s.IsWildcard() && !subj.IsUserset() && s.Object.Type == subj.Object.Type:
				next = func(context.Context) (outcome, error) {
					return finish(q.explainNode(t.Key().String()), outcome{ok: true}, ""), nil
				}
			case s.Relation != "" && !s.IsWildcard():
				next = func(ctx context.Context) (outcome, error) {
					return q.checkRel(ctx, pos, s.Object, s.Relation, subj)
				}
			default:
				continue
			}
			var tk task
			if t.Caveat != nil {
				tk = func(ctx context.Context) (outcome, error) { return q.viaCaveat(ctx, t, next) }
			} else {
				tk = func(ctx context.Context) (outcome, error) {
					out, err := next(ctx)
					if err != nil || !q.explain {
						return out, err
					}
					return finish(&Explanation{Step: t.String()}, out, "", out.exp), nil
				}
			}
			if !yield(tk, nil) {
				return
			}
		}
	}
	// Volatile only through a caveated tuple it followed (viaCaveat): tuples without a
	// caveat give the same answer whatever the context, and an expiring one pins the
	// answer to this revision instead (deps).
	return q.fanOut(ctx, exp, tasks, true)
}
