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
	// Caveated, when not empty, parallels Subjects: Caveated[i] is set when Subjects[i]
	// holds only under a caveat (its tuple's, or for an arrow the tupleset tuple's).
	// It is empty when no subject is caveated.
	Caveated []bool
	Children []*ExpandNode
}

// caveated records that subject i of n is caveated.
func (n *ExpandNode) caveated(i int, c bool) {
	if !c && len(n.Caveated) == 0 {
		return
	}
	for len(n.Caveated) <= i {
		n.Caveated = append(n.Caveated, false)
	}
	n.Caveated[i] = c
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
				return nil, fmt.Errorf("reading %s#%s: %w", obj, rel.Name, err)
			}
			n.Subjects = append(n.Subjects, t.Subject)
			n.caveated(len(n.Subjects)-1, t.Caveat != nil)
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
		leaf := &ExpandNode{Kind: ExpandLeaf, Description: desc}
		for t, err := range r.Subjects(ctx, obj, rw.Tupleset, "") {
			if err != nil {
				return nil, fmt.Errorf("reading %s#%s: %w", obj, rw.Tupleset, err)
			}
			x := t.Subject.Object
			if t.Subject.IsWildcard() || c.rel(x.Type, rw.Relation) == nil {
				continue
			}
			if n := len(leaf.Subjects); n > 0 && leaf.Subjects[n-1].Object == x {
				// The same object through another tuple: caveated only if both are.
				if len(leaf.Caveated) >= n && leaf.Caveated[n-1] && t.Caveat == nil {
					leaf.Caveated[n-1] = false
				}
				continue
			}
			leaf.Subjects = append(leaf.Subjects, tuples.SubjectRef{Object: x, Relation: rw.Relation})
			leaf.caveated(len(leaf.Subjects)-1, t.Caveat != nil)
		}
		if !rw.All {
			return leaf, nil
		}
		n := &ExpandNode{Kind: ExpandIntersection, Description: desc}
		for i, s := range leaf.Subjects {
			ch := &ExpandNode{Kind: ExpandLeaf, Description: rw.Relation, Subjects: []tuples.SubjectRef{s}}
			ch.caveated(0, i < len(leaf.Caveated) && leaf.Caveated[i])
			n.Children = append(n.Children, ch)
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
	return nil, fmt.Errorf("unknown rewrite kind %d in %s#%s", rw.Kind, obj.Type, rel.Name)
}
