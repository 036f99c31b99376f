package check

// explainNode returns a new explanation node when the request explains.
func (q *request) explainNode(step string) *Explanation {
	if !q.explain {
		return nil
	}
	return &Explanation{Step: step}
}

// finish sets the node's result and children and returns out with it attached.
func finish(exp *Explanation, out outcome, note string, children ...*Explanation) outcome {
	if exp == nil {
		return out
	}
	exp.Result = out.ok && !out.cond
	exp.Conditional, exp.Missing = out.cond, out.missing
	if note != "" {
		exp.Note = note
	}
	for _, ch := range children {
		if ch != nil {
			exp.Children = append(exp.Children, ch)
		}
	}
	out.exp = exp
	return out
}

// notEvaluated is the explanation of a branch short-circuited away.
func (q *request) notEvaluated() *Explanation {
	if !q.explain {
		return nil
	}
	return &Explanation{Step: "subtracted side", Note: "not evaluated"}
}
