package pgstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/relata/relata/tuples"
)

// Caveats and expirations are kept per tuple version in caveat_name,
// caveat_context (jsonb) and expires_at with expires_nanos (migration 0002): NULL for a
// plain tuple. An expiration is stored as its microsecond (timestamptz) plus the
// nanoseconds within it, so that it reads back exactly; a version is visible at
// revision R when its expiration is after R's commit time, which relata_commit keeps
// with microsecond precision (clock_timestamp() once the revision row is locked, so
// commit times grow with revisions).

// attrCols are the attribute columns, in the order attrs scans and binds them.
const attrCols = "caveat_name, caveat_context, expires_at, expires_nanos"

// attrs is a tuple's caveat and expiration as SQL values.
type attrs struct {
	caveat  *string
	context *string // JSON text
	expires *time.Time
	nanos   *int16
}

// attrsOf returns t's attributes as SQL values.
func attrsOf(t tuples.Tuple) attrs {
	var a attrs
	if t.Caveat != nil {
		name := t.Caveat.Name
		a.caveat = &name
		if len(t.Caveat.Context) > 0 {
			c := string(t.Caveat.ContextJSON())
			a.context = &c
		}
	}
	if !t.ExpiresAt.IsZero() {
		e := t.ExpiresAt.UTC()
		trunc := e.Truncate(time.Microsecond)
		n := int16(e.Nanosecond() % 1000)
		a.expires, a.nanos = &trunc, &n
	}
	return a
}

// apply sets t's caveat and expiration from scanned values.
func (a attrs) apply(t *tuples.Tuple) error {
	t.Caveat, t.ExpiresAt = nil, time.Time{}
	if a.caveat != nil {
		c := &tuples.Caveat{Name: *a.caveat}
		if a.context != nil {
			if err := json.Unmarshal([]byte(*a.context), &c.Context); err != nil {
				return fmt.Errorf("corrupt caveat context of %s: %w", t, err)
			}
			if len(c.Context) == 0 {
				c.Context = nil
			}
		}
		t.Caveat = c
	}
	if a.expires != nil {
		e := a.expires.UTC()
		if a.nanos != nil {
			e = e.Add(time.Duration(*a.nanos))
		}
		t.ExpiresAt = e
	}
	return nil
}

// same reports whether t and u carry the same caveat, context and expiration.
func same(t, u tuples.Tuple) bool {
	if !t.ExpiresAt.Equal(u.ExpiresAt) || (t.Caveat == nil) != (u.Caveat == nil) {
		return false
	}
	if t.Caveat == nil {
		return true
	}
	return t.Caveat.Name == u.Caveat.Name && string(t.Caveat.ContextJSON()) == string(u.Caveat.ContextJSON())
}

// targets returns pointers to scan the attribute columns into.
func (a *attrs) targets() []any {
	return []any{&a.caveat, &a.context, &a.expires, &a.nanos}
}

// visibleAt is the expiration condition of a version at revision $n: no expiration,
// or one after the revision's commit time.
func visibleAt(n string) string {
	c := "(SELECT committed_at FROM relata_commit WHERE rev = " + n + ")"
	return "(expires_at IS NULL OR expires_at > " + c + " OR (expires_at = " + c + " AND expires_nanos > 0))"
}

// attrColumns holds the attributes of tuples as parallel arrays, for unnest.
type attrColumns struct {
	caveat  []*string
	context []*string
	expires []*time.Time
	nanos   []*int16
}

func (c *attrColumns) add(t tuples.Tuple) {
	a := attrsOf(t)
	c.caveat = append(c.caveat, a.caveat)
	c.context = append(c.context, a.context)
	c.expires = append(c.expires, a.expires)
	c.nanos = append(c.nanos, a.nanos)
}
