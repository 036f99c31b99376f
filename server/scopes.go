package server

import (
	"fmt"
	"slices"
	"strings"
)

// Scope is what a caller may do. Every gRPC method (and so every REST route) requires
// exactly one scope; methodScopes is the one table of which.
type Scope string

// The scopes of docs/security.md.
const (
	// ScopeRead allows the calls that read: Check, CheckBulk, Expand, the lookups,
	// Read, ReadSchema, schema history, Watch, Export, and server reflection.
	ScopeRead Scope = "read"
	// ScopeWrite allows Write, Delete and Import.
	ScopeWrite Scope = "write"
	// ScopeSchema allows WriteSchema and DiffSchema.
	ScopeSchema Scope = "schema"
	// ScopeAdmin allows the AdminService (backups) and any method the table does not
	// name.
	ScopeAdmin Scope = "admin"
)

// AllScopes lists every scope, in the order docs and errors name them.
var AllScopes = []Scope{ScopeRead, ScopeWrite, ScopeSchema, ScopeAdmin}

// ParseScope parses a scope name.
func ParseScope(s string) (Scope, error) {
	sc := Scope(s)
	if slices.Contains(AllScopes, sc) {
		return sc, nil
	}
	return "", fmt.Errorf("unknown scope %q: want one of read, write, schema, admin", s)
}

// methodScopes maps a gRPC full method name to the scope it requires. A name ending
// in "/*" covers every method of that service. A method in neither requires
// ScopeAdmin (fail closed); TestEveryMethodHasAScope keeps the table complete.
// Health checks are open and are not in the table (see authExempt).
var methodScopes = map[string]Scope{
	"/relata.v1.PermissionService/Check":           ScopeRead,
	"/relata.v1.PermissionService/CheckBulk":       ScopeRead,
	"/relata.v1.PermissionService/Expand":          ScopeRead,
	"/relata.v1.PermissionService/LookupResources": ScopeRead,
	"/relata.v1.PermissionService/LookupSubjects":  ScopeRead,

	"/relata.v1.RelationshipService/Read":   ScopeRead,
	"/relata.v1.RelationshipService/Export": ScopeRead,
	"/relata.v1.RelationshipService/Watch":  ScopeRead,
	"/relata.v1.RelationshipService/Write":  ScopeWrite,
	"/relata.v1.RelationshipService/Delete": ScopeWrite,
	"/relata.v1.RelationshipService/Import": ScopeWrite,

	"/relata.v1.SchemaService/ReadSchema":          ScopeRead,
	"/relata.v1.SchemaService/ListSchemaRevisions": ScopeRead,
	"/relata.v1.SchemaService/WriteSchema":         ScopeSchema,
	"/relata.v1.SchemaService/DiffSchema":          ScopeSchema,

	"/relata.v1.AdminService/*": ScopeAdmin,

	"/grpc.reflection.v1.ServerReflection/*":      ScopeRead,
	"/grpc.reflection.v1alpha.ServerReflection/*": ScopeRead,
}

// requiredScope returns the scope method requires, and whether the table names it.
func requiredScope(method string) (Scope, bool) {
	if sc, ok := methodScopes[method]; ok {
		return sc, true
	}
	if i := strings.LastIndexByte(method, '/'); i > 0 {
		if sc, ok := methodScopes[method[:i]+"/*"]; ok {
			return sc, true
		}
	}
	return ScopeAdmin, false
}

// scopeSet is a set of scopes as a bit set.
type scopeSet uint8

func scopeBit(sc Scope) scopeSet {
	return 1 << scopeSet(slices.Index(AllScopes, sc))
}

// allScopeSet holds every scope (the preshared key's).
var allScopeSet = func() scopeSet {
	var s scopeSet
	for _, sc := range AllScopes {
		s |= scopeBit(sc)
	}
	return s
}()

func newScopeSet(scopes ...Scope) scopeSet {
	var s scopeSet
	for _, sc := range scopes {
		s |= scopeBit(sc)
	}
	return s
}

func (s scopeSet) has(sc Scope) bool { return s&scopeBit(sc) != 0 }

// list returns the scopes in s, in AllScopes order.
func (s scopeSet) list() []Scope {
	var out []Scope
	for _, sc := range AllScopes {
		if s.has(sc) {
			out = append(out, sc)
		}
	}
	return out
}

func (s scopeSet) String() string {
	var names []string
	for _, sc := range s.list() {
		names = append(names, string(sc))
	}
	return strings.Join(names, ",")
}
