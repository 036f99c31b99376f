package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// TestLookupBatchEncoding: the codec's hand encoding of a batched
// LookupResourcesResponse is byte for byte proto.Marshal's, and decodes to the same
// message; messages it does not handle go to the proto codec unchanged.
func TestLookupBatchEncoding(t *testing.T) {
	long := strings.Repeat("x", 300) // lengths that take two varint bytes
	obj := func(typ, id string) *relatav1.ObjectRef { return &relatav1.ObjectRef{Type: typ, Id: id} }
	many := &relatav1.LookupResourcesResponse{LookedUpAt: "z1", Cursor: "c1"}
	for i := range 1000 {
		many.Results = append(many.Results, &relatav1.LookupResourcesResult{Object: obj("flow", fmt.Sprintf("c%df%d", i%100, i))})
	}
	handled := []*relatav1.LookupResourcesResponse{
		many, // above the buffer pooling threshold
		{LookedUpAt: "z", Cursor: "c", Results: []*relatav1.LookupResourcesResult{{Object: obj("flow", "c0f1")}}},
		{Results: []*relatav1.LookupResourcesResult{{Object: obj("", "")}, {Object: obj(long, long)}}},
		{LookedUpAt: long, Results: []*relatav1.LookupResourcesResult{
			{Object: obj("doc", "1"), Conditional: true, MissingContext: []string{"ip", long}},
			{Object: obj("doc", "2"), MissingContext: []string{""}},
		}},
	}
	codec := newLenientCodec()
	for i, m := range handled {
		size, ok := lookupBatchSize(m)
		require.True(t, ok, "case %d", i)
		want, err := proto.Marshal(m)
		require.NoError(t, err)
		require.Equal(t, len(want), size, "case %d", i)
		data, err := codec.Marshal(m)
		require.NoError(t, err)
		got := data.Materialize()
		data.Free()
		require.Equal(t, want, got, "case %d", i)
		var back relatav1.LookupResourcesResponse
		require.NoError(t, proto.Unmarshal(got, &back))
		require.True(t, proto.Equal(m, &back), "case %d", i)
		for _, r := range m.Results {
			require.Equal(t, proto.Size(r), resultSize(r), "the batcher's size of %v", r)
		}
	}

	withUnknown := &relatav1.LookupResourcesResult{Object: obj("doc", "1")}
	withUnknown.ProtoReflect().SetUnknown([]byte{0x98, 0x06, 0x01}) // field 99, varint 1
	unhandled := []*relatav1.LookupResourcesResponse{
		{Object: obj("doc", "1"), LookedUpAt: "z"}, // the single-result form
		{Conditional: true, Results: []*relatav1.LookupResourcesResult{{Object: obj("doc", "1")}}},
		{Results: []*relatav1.LookupResourcesResult{{}}}, // a result without its object
		{Results: []*relatav1.LookupResourcesResult{withUnknown}},
	}
	for i, m := range unhandled {
		_, ok := lookupBatchSize(m)
		require.False(t, ok, "case %d", i)
		want, err := proto.Marshal(m)
		require.NoError(t, err)
		data, err := codec.Marshal(m)
		require.NoError(t, err)
		require.Equal(t, want, data.Materialize(), "case %d", i)
		data.Free()
	}
}

// TestLookupBatchEncodingKnowsEveryField: the hand encoder writes the fields it
// knows and nothing else, so a field added to one of its messages must be added
// there too (codec_lookup.go) — this test names the message that grew.
func TestLookupBatchEncodingKnowsEveryField(t *testing.T) {
	for _, c := range []struct {
		msg    proto.Message
		fields []int
	}{
		// object, conditional and missing_context (1, 4, 5) send the message to the
		// proto codec; the others are encoded by hand.
		{&relatav1.LookupResourcesResponse{}, []int{1, 2, 3, 4, 5, lrResults}},
		{&relatav1.LookupResourcesResult{}, []int{lrrObject, lrrCond, lrrMissing}},
		{&relatav1.ObjectRef{}, []int{orType, orID}},
	} {
		d := c.msg.ProtoReflect().Descriptor()
		var got []int
		for i := range d.Fields().Len() {
			got = append(got, int(d.Fields().Get(i).Number()))
		}
		require.ElementsMatch(t, c.fields, got, "%s changed: codec_lookup.go encodes it by hand", d.FullName())
	}
}
