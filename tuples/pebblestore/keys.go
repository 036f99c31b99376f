package pebblestore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/relata/relata/tuples"
)

// Key layout. Every key starts with a one-byte keyspace tag. Strings are written
// followed by a 0x00 terminator: names and ids never contain 0x00 (they are validated
// before any write), so bytewise key order equals the order of the component tuple,
// and no tuple's key is a prefix of another's.
//
//	f ot 0 oid 0 rel 0 st 0 sid 0 srel 0   forward index  → versions
//	r st 0 sid 0 srel 0 ot 0 rel 0 oid 0   reverse index  → versions (same bytes)
//	c rev(8) seq(4)                        change log     → op(1) ot 0 oid 0 … srel 0
//	s rev(8)                               schema text written at rev
//	t rev(8)                               commit time (unix ns, 8 bytes) of a group's last rev
//	m "head", m "horizon"                  metadata (revision, 8 bytes)
//
// Revisions are big-endian so that they sort numerically. A versions value is a
// sequence of uvarint pairs (created, deleted), oldest first; deleted 0 means live.
// A tuple is live at revision R when some pair has created ≤ R and (deleted == 0 or
// R < deleted).
const (
	tagForward = 'f'
	tagReverse = 'r'
	tagChange  = 'c'
	tagSchema  = 's'
	tagTime    = 't'
	tagMeta    = 'm'
)

var (
	keyHead    = []byte("mhead")
	keyHorizon = []byte("mhorizon")
)

// appendParts appends each part followed by a 0x00 terminator.
func appendParts(dst []byte, parts ...string) []byte {
	for _, p := range parts {
		dst = append(dst, p...)
		dst = append(dst, 0)
	}
	return dst
}

func forwardKey(dst []byte, t tuples.Tuple) []byte {
	dst = append(dst, tagForward)
	return appendParts(dst, t.Object.Type, t.Object.ID, t.Relation,
		t.Subject.Object.Type, t.Subject.Object.ID, t.Subject.Relation)
}

func reverseKey(dst []byte, t tuples.Tuple) []byte {
	dst = append(dst, tagReverse)
	return appendParts(dst, t.Subject.Object.Type, t.Subject.Object.ID, t.Subject.Relation,
		t.Object.Type, t.Relation, t.Object.ID)
}

// decodeParts splits six 0x00-terminated parts.
func decodeParts(b []byte) ([6]string, error) {
	var parts [6]string
	s := string(b) // one allocation; the parts share it
	for i := range parts {
		j := strings.IndexByte(s, 0)
		if j < 0 {
			return parts, fmt.Errorf("pebblestore: corrupt key %q", b)
		}
		parts[i], s = s[:j], s[j+1:]
	}
	if s != "" {
		return parts, fmt.Errorf("pebblestore: corrupt key %q", b)
	}
	return parts, nil
}

// decodeForward decodes a forward key (tag included).
func decodeForward(key []byte) (tuples.Tuple, error) {
	p, err := decodeParts(key[1:])
	if err != nil {
		return tuples.Tuple{}, err
	}
	return tuples.Tuple{
		Object:   tuples.ObjectRef{Type: p[0], ID: p[1]},
		Relation: p[2],
		Subject:  tuples.SubjectRef{Object: tuples.ObjectRef{Type: p[3], ID: p[4]}, Relation: p[5]},
	}, nil
}

// decodeReverse decodes a reverse key (tag included).
func decodeReverse(key []byte) (tuples.Tuple, error) {
	p, err := decodeParts(key[1:])
	if err != nil {
		return tuples.Tuple{}, err
	}
	return tuples.Tuple{
		Object:   tuples.ObjectRef{Type: p[3], ID: p[5]},
		Relation: p[4],
		Subject:  tuples.SubjectRef{Object: tuples.ObjectRef{Type: p[0], ID: p[1]}, Relation: p[2]},
	}, nil
}

// filterParts returns the leading components of f in forward order (ot, oid, rel,
// st, sid, srel) up to the first unset one. SubjectRelation Ellipsis is the empty
// relation, which is a set component.
func filterParts(f tuples.Filter, reverse bool) []string {
	srel, srelSet := f.SubjectRelation, f.SubjectRelation != ""
	if srel == tuples.Ellipsis {
		srel = ""
	}
	type comp struct {
		v   string
		set bool
	}
	order := []comp{{f.ObjectType, f.ObjectType != ""}, {f.ObjectID, f.ObjectID != ""}, {f.Relation, f.Relation != ""},
		{f.SubjectType, f.SubjectType != ""}, {f.SubjectID, f.SubjectID != ""}, {srel, srelSet}}
	if reverse {
		order = []comp{order[3], order[4], order[5], order[0], order[2], order[1]}
	}
	var parts []string
	for _, c := range order {
		if !c.set {
			break
		}
		parts = append(parts, c.v)
	}
	return parts
}

// scanPlan picks the index for f: the one whose key prefix fixes more components,
// forward on a tie or when the caller needs canonical order.
func scanPlan(f tuples.Filter, ordered bool) (prefix []byte, reverse bool) {
	fwd := filterParts(f, false)
	if !ordered {
		if rev := filterParts(f, true); len(rev) > len(fwd) {
			return appendParts([]byte{tagReverse}, rev...), true
		}
	}
	return appendParts([]byte{tagForward}, fwd...), false
}

// prefixEnd returns the smallest key greater than every key with the given prefix.
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func revKey(tag byte, rev tuples.Revision) []byte {
	k := make([]byte, 9)
	k[0] = tag
	binary.BigEndian.PutUint64(k[1:], uint64(rev))
	return k
}

func changeKey(rev tuples.Revision, seq uint32) []byte {
	k := make([]byte, 13)
	k[0] = tagChange
	binary.BigEndian.PutUint64(k[1:9], uint64(rev))
	binary.BigEndian.PutUint32(k[9:], seq)
	return k
}

func keyRevision(k []byte) tuples.Revision {
	return tuples.Revision(binary.BigEndian.Uint64(k[1:9]))
}

func encodeUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeUint64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("pebblestore: corrupt 8-byte value %x", b)
	}
	return binary.BigEndian.Uint64(b), nil
}

// changeValue encodes a change-log entry.
func changeValue(op tuples.Operation, t tuples.Tuple) []byte {
	v := []byte{byte(op)}
	return appendParts(v, t.Object.Type, t.Object.ID, t.Relation,
		t.Subject.Object.Type, t.Subject.Object.ID, t.Subject.Relation)
}

func decodeChange(key, value []byte) (tuples.Change, error) {
	if len(key) != 13 || len(value) < 1 {
		return tuples.Change{}, fmt.Errorf("pebblestore: corrupt change %x", key)
	}
	t, err := decodeForward(value) // value[0] is the op, in the tag's place
	if err != nil {
		return tuples.Change{}, err
	}
	return tuples.Change{Revision: keyRevision(key), Op: tuples.Operation(value[0]), Tuple: t}, nil
}

// version is one lifetime of a tuple: live at revisions [created, deleted), or from
// created on when deleted is 0.
type version struct{ created, deleted tuples.Revision }

func decodeVersions(dst []version, v []byte) ([]version, error) {
	for len(v) > 0 {
		c, n := binary.Uvarint(v)
		if n <= 0 {
			return nil, fmt.Errorf("pebblestore: corrupt versions %x", v)
		}
		d, m := binary.Uvarint(v[n:])
		if m <= 0 {
			return nil, fmt.Errorf("pebblestore: corrupt versions %x", v)
		}
		dst = append(dst, version{tuples.Revision(c), tuples.Revision(d)})
		v = v[n+m:]
	}
	return dst, nil
}

func encodeVersions(vs []version) []byte {
	out := make([]byte, 0, len(vs)*6)
	for _, v := range vs {
		out = binary.AppendUvarint(out, uint64(v.created))
		out = binary.AppendUvarint(out, uint64(v.deleted))
	}
	return out
}

// liveAt reports whether a versions value has a version live at rev, without
// allocating.
func liveAt(v []byte, rev tuples.Revision) (bool, error) {
	for len(v) > 0 {
		c, n := binary.Uvarint(v)
		if n <= 0 {
			return false, fmt.Errorf("pebblestore: corrupt versions %x", v)
		}
		d, m := binary.Uvarint(v[n:])
		if m <= 0 {
			return false, fmt.Errorf("pebblestore: corrupt versions %x", v)
		}
		if tuples.Revision(c) <= rev && (d == 0 || rev < tuples.Revision(d)) {
			return true, nil
		}
		v = v[n+m:]
	}
	return false, nil
}

// liveNow reports whether the newest version is not deleted: the tuple is live at
// the head, including writes staged earlier in the committing group.
func liveNow(v []byte) (bool, error) {
	return liveAt(v, tuples.Revision(1<<63))
}
