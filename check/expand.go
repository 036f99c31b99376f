package check

import (
	"context"
	"fmt"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// ExpandRequest asks for the userset tree of Object#Relation.
type ExpandRequest struct {
	Object   tuples.ObjectRef
	Relation string
}

// ExpandKind is the kind of an ExpandNode.
type ExpandKind int

const (
	// ExpandLeaf holds subjects: direct subjects, wildcards and usersets.
	ExpandLeaf ExpandKind = iota + 1
	// ExpandUnion is any of its children.
	ExpandUnion
	// ExpandIntersection is all of its children (none: the empty set).
	ExpandIntersection
	// ExpandExclusion is the first child minus the second.
	ExpandExclusion
)

// String returns leaf, union, intersection or exclusion.
func (k ExpandKind) String() string {
	switch k {
	case ExpandLeaf:
		return "leaf"
	case ExpandUnion:
		return "union"
	case ExpandIntersection:
		return "intersection"
	case ExpandExclusion:
		return "exclusion"
	}
	return "unknown"
}

// ExpandNode is one node of a userset tree, one level deep (as in Zanzibar): leaves
// hold subjects and usersets, which callers expand further with another Expand.
//
// The root names the expanded userset; a permission whose rewrite is a single step is a
// union of one leaf. A leaf with Object set lists the tuples of the stored relation Object#Relation: its
// subjects are members of that userset. A leaf without Object stands for a rewrite
// step (a computed userset, an arrow, self): the members of its usersets, and any plain
// subject, belong to the expanded userset.
type ExpandNode struct {
	Kind ExpandKind
	// Object and Relation name the userset this node expands: set on the root and on
	// leaves of stored tuples.
	Object   tuples.ObjectRef
	Relation string
	// Description is the rewrite step: "viewer", "tenant->view", "self", "nil".
	Description string
	Subjects    []tuples.SubjectRef
	Children    []*ExpandNode
}

// Expand returns the userset tree of req.Object#req.Relation at r's snapshot, one level
// deep. An unknown type or relation is a *NotFoundError.
func (e *Engine) Expand(ctx context.Context, r tuples.Reader, req ExpandRequest) (*ExpandNode, error) {
	c, err := e.schemaFor(ctx, r)
	if err != nil {
		return nil, err
	}
	if err := validateRel(c, "object", req.Object.Type, req.Relation, "relation"); err != nil {
		return nil, err
	}
	rel := c.rel(req.Object.Type, req.Relation)
	n, err := expandRewrite(ctx, r, c, req.Object, rel, rel.Rewrite)
	if err != nil {
		return nil, err
	}
	if n.Kind == ExpandLeaf && n.Object.Type == "" {
		// A permission that is a single step: keep leaves with Object for stored tuples.
		n = &ExpandNode{Kind: ExpandUnion, Description: "union", Children: []*ExpandNode{n}}
	}
	n.Object, n.Relation = req.Object, req.Relation
	return n, nil
}

func expandRewrite(ctx context.Context, r tuples.Reader, c *compiled, obj tuples.ObjectRef, rel *schema.Relation, rw *schema.Rewrite) (*ExpandNode, error) {
	if rw == nil || rw.Kind == schema.This {
		n := &ExpandNode{Kind: ExpandLeaf, Object: obj, Relation: rel.Name, Description: rel.Name}
		for t, err := range r.Subjects(ctx, obj, rel.Name, "") {
			if err != nil {
				return nil, fmt.Errorf("check: reading %s#%s: %w", obj, rel.Name, err)
			}
			n.Subjects = append(n.Subjects, t.Subject)
		}
		return n, nil
	}
	switch rw.Kind {
	case schema.ComputedUserset:
		return &ExpandNode{Kind: ExpandLeaf, Description: rw.Relation,
			Subjects: []tuples.SubjectRef{{Object: obj, Relation: rw.Relation}}}, nil
	case schema.TupleToUserset:
		desc := rw.Tupleset + "->" + rw.Relation
		if rw.All {
			desc = rw.Tupleset + ".all(" + rw.Relation + ")"
		}
		var subjects []tuples.SubjectRef
		for t, err := range r.Subjects(ctx, obj, rw.Tupleset, "") {
			if err != nil {
				return nil, fmt.Errorf("check: reading %s#%s: %w", obj, rw.Tupleset, err)
			}
			x := t.Subject.Object
			if t.Subject.IsWildcard() || c.rel(x.Type, rw.Relation) == nil {
				continue
			}
			if n := len(subjects); n > 0 && subjects[n-1].Object == x {
				continue
			}
			subjects = append(subjects, tuples.SubjectRef{Object: x, Relation: rw.Relation})
		}
		if !rw.All {
			return &ExpandNode{Kind: ExpandLeaf, Description: desc, Subjects: subjects}, nil
		}
		n := &ExpandNode{Kind: ExpandIntersection, Description: desc}
		for _, s := range subjects {
			n.Children = append(n.Children, &ExpandNode{Kind: ExpandLeaf, Description: rw.Relation, Subjects: []tuples.SubjectRef{s}})
		}
		return n, nil
	case schema.Union, schema.Intersection, schema.Exclusion:
		kind := map[schema.RewriteKind]ExpandKind{schema.Union: ExpandUnion, schema.Intersection: ExpandIntersection, schema.Exclusion: ExpandExclusion}[rw.Kind]
		n := &ExpandNode{Kind: kind, Description: kind.String()}
		for _, ch := range rw.Children {
			cn, err := expandRewrite(ctx, r, c, obj, rel, ch)
			if err != nil {
				return nil, err
			}
			n.Children = append(n.Children, cn)
		}
		return n, nil
	case schema.Nil:
		return &ExpandNode{Kind: ExpandLeaf, Description: "nil"}, nil
	case schema.Self:
		return &ExpandNode{Kind: ExpandLeaf, Description: "self", Subjects: []tuples.SubjectRef{{Object: obj}}}, nil
	}
	return nil, fmt.Errorf("check: unknown rewrite kind %d in %s#%s", rw.Kind, obj.Type, rel.Name)
}
