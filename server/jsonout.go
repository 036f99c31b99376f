package server

import (
	"bytes"
	"encoding/json"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// MarshalJSON is m as Relata prints JSON, over REST and in the CLI's --json: the proto's
// lowerCamelCase names, enums in the spelling requests use (`"operation":"TOUCH"`: the
// proto declares the short names first), compact, and empty fields left out, as export
// prints tuples — except the fields whose zero value is the answer: a denied check says
// `"allowed":false` (in CheckBulk too), a schema diff prints every field
// (`"refused":false`, `"added":[]`), a looked-up subject lists its exclusions
// (`"excluded":[]`), and Delete and Import say how many tuples even when none. An
// answer that is not conditional has no caveat fields (`{"allowed":true,"checkedAt":"…"}`).
func MarshalJSON(m proto.Message) ([]byte, error) {
	var full bool // every field printed: the answer is in its zero values too
	switch m.(type) {
	case *relatav1.CheckBulkResponse, *relatav1.DiffSchemaResponse:
		full = true
	}
	b, err := protojson.MarshalOptions{EmitDefaultValues: full}.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil { // protojson varies its spacing on purpose
		return nil, err
	}
	b = buf.Bytes()
	switch r := m.(type) {
	case *relatav1.CheckBulkResponse:
		b = bytes.ReplaceAll(b, unconditionalFields, nil)
	case *relatav1.CheckResponse:
		if !r.GetAllowed() {
			b = withField(b, "", `"allowed":false`)
		}
	case *relatav1.LookupSubjectsResponse:
		if r.GetSubject() != nil && len(r.GetExcluded()) == 0 {
			b = withField(b, "subject", `"excluded":[]`)
		}
	case *relatav1.DeleteResponse:
		if r.GetDeleted() == 0 {
			b = withField(b, "deletedAt", `"deleted":0`)
		}
	case *relatav1.ImportResponse:
		if r.GetImported() == 0 {
			b = withField(b, "", `"imported":"0"`)
		}
	}
	return b, nil
}

// unconditionalFields are the caveat fields of a CheckBulk item that does not depend on
// missing context, as compact protojson prints them with default values (the two
// fields are adjacent).
var unconditionalFields = []byte(`,"conditional":false,"missingContext":[]`)

// withField inserts field (`"name":value`) into the compact JSON object b right after
// the value of key when key is b's first key, else first.
func withField(b []byte, key, field string) []byte {
	if prefix := `{"` + key + `":`; key != "" && bytes.HasPrefix(b, []byte(prefix)) {
		dec := json.NewDecoder(bytes.NewReader(b[len(prefix):]))
		var v json.RawMessage
		if dec.Decode(&v) == nil {
			i := len(prefix) + int(dec.InputOffset())
			out := append([]byte{}, b[:i]...)
			out = append(out, ',')
			out = append(out, field...)
			return append(out, b[i:]...)
		}
	}
	out := append([]byte{'{'}, field...)
	if len(b) > 2 {
		out = append(out, ',')
	}
	return append(out, b[1:]...)
}
