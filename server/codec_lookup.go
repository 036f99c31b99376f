package server

import (
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// A batched LookupResourcesResponse carries up to a thousand results, each a
// message holding an ObjectRef. The proto codec sizes it (proto.Size walks every
// result) and then marshals it through the generic table-driven encoder: a profile of
// peerbench's lookup phase showed the two at 12-18% of the server's CPU. The codec
// encodes such a message here instead, in one sizing pass over plain Go fields and
// one writing pass, producing exactly the bytes proto.Marshal would (fields in number
// order, zero scalars left out; TestLookupBatchEncoding compares them).

// Field numbers of the messages encoded by hand.
const (
	lrLookedUpAt = 2 // LookupResourcesResponse.looked_up_at
	lrCursor     = 3 // LookupResourcesResponse.cursor
	lrResults    = 6 // LookupResourcesResponse.results
	lrrObject    = 1 // LookupResourcesResult.object
	lrrCond      = 2 // LookupResourcesResult.conditional
	lrrMissing   = 3 // LookupResourcesResult.missing_context
	orType       = 1 // ObjectRef.type
	orID         = 2 // ObjectRef.id
)

// lookupBatchSize returns the encoded size of m, and false when m is not a batched
// response this file encodes: a single-result field set, unknown fields anywhere, or
// a result without its object.
func lookupBatchSize(m *relatav1.LookupResourcesResponse) (int, bool) {
	if m.Object != nil || m.Conditional || len(m.MissingContext) > 0 || len(m.ProtoReflect().GetUnknown()) > 0 {
		return 0, false
	}
	n := stringFieldSize(m.LookedUpAt) + stringFieldSize(m.Cursor)
	for _, r := range m.Results {
		if r == nil || r.Object == nil || len(r.ProtoReflect().GetUnknown()) > 0 || len(r.Object.ProtoReflect().GetUnknown()) > 0 {
			return 0, false
		}
		n += 1 + protowire.SizeBytes(resultSize(r))
	}
	return n, true
}

// stringFieldSize is the size of a proto3 string field with a one-byte tag: nothing
// when empty.
func stringFieldSize(s string) int {
	if s == "" {
		return 0
	}
	return 1 + protowire.SizeBytes(len(s))
}

func objectSize(o *relatav1.ObjectRef) int {
	return stringFieldSize(o.Type) + stringFieldSize(o.Id)
}

func resultSize(r *relatav1.LookupResourcesResult) int {
	n := 1 + protowire.SizeBytes(objectSize(r.Object))
	if r.Conditional {
		n += 2
	}
	for _, s := range r.MissingContext {
		n += 1 + protowire.SizeBytes(len(s))
	}
	return n
}

func appendStringField(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendLookupBatch appends m's encoding (lookupBatchSize said it applies).
func appendLookupBatch(b []byte, m *relatav1.LookupResourcesResponse) []byte {
	b = appendStringField(b, lrLookedUpAt, m.LookedUpAt)
	b = appendStringField(b, lrCursor, m.Cursor)
	for _, r := range m.Results {
		b = protowire.AppendTag(b, lrResults, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(resultSize(r)))
		b = protowire.AppendTag(b, lrrObject, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(objectSize(r.Object)))
		b = appendStringField(b, orType, r.Object.Type)
		b = appendStringField(b, orID, r.Object.Id)
		if r.Conditional {
			b = protowire.AppendTag(b, lrrCond, protowire.VarintType)
			b = protowire.AppendVarint(b, 1)
		}
		for _, s := range r.MissingContext {
			b = protowire.AppendTag(b, lrrMissing, protowire.BytesType)
			b = protowire.AppendString(b, s)
		}
	}
	return b
}

// marshalLookupBatch encodes m into a pooled buffer as the proto codec would, or
// reports false to leave m to it.
func marshalLookupBatch(m *relatav1.LookupResourcesResponse) (mem.BufferSlice, bool) {
	size, ok := lookupBatchSize(m)
	if !ok {
		return nil, false
	}
	if mem.IsBelowBufferPoolingThreshold(size) {
		return mem.BufferSlice{mem.SliceBuffer(appendLookupBatch(make([]byte, 0, size), m))}, true
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	*buf = appendLookupBatch((*buf)[:0], m)
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, true
}
