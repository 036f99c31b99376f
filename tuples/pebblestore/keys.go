package pebblestore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

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
//	m "storeid"                            the store's random id (text)
//	m "unnamed"                            Identity.UnnamedThrough (revision, 8 bytes)
//
// Revisions are big-endian so that they sort numerically. A versions value is a
// sequence of uvarint pairs (created, deleted), oldest first; deleted 0 means live.
// A tuple is live at revision R when some pair has created ≤ R and (deleted == 0 or
// R < deleted). When some version carries a caveat or an expiration, the value is
// instead 0x00 (never the first byte of a pair: revisions start at 1) followed by
// triples (created, deleted, attributes) where attributes is a uvarint length and
// that many bytes: empty for a plain version, else see encodeAttr. A change-log
// entry's value is followed by the attributes of the tuple written.
const (
	tagForward = 'f'
	tagReverse = 'r'
	tagChange  = 'c'
	tagSchema  = 's'
	tagTime    = 't'
	tagMeta    = 'm'
	// tagExpiry keys the GC's queue of live versions that expire after the horizon
	// passed their write: 'x', expiration (8-byte seconds, 4-byte nanoseconds, big
	// endian), then the tuple's forward key. See gc.go.
	tagExpiry = 'x'
)

var (
	keyHead    = []byte("mhead")
	keyHorizon = []byte("mhorizon")
	keyStoreID = []byte("mstoreid")
	keyUnnamed = []byte("munnamed")
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
			return parts, fmt.Errorf("corrupt key %q", b)
		}
		parts[i], s = s[:j], s[j+1:]
	}
	if s != "" {
		return parts, fmt.Errorf("corrupt key %q", b)
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
		return 0, fmt.Errorf("corrupt 8-byte value %x", b)
	}
	return binary.BigEndian.Uint64(b), nil
}

// changeValue encodes a change-log entry: the op, the key parts, then the tuple's
// attributes (nothing for a plain tuple).
func changeValue(op tuples.Operation, t tuples.Tuple) []byte {
	v := []byte{byte(op)}
	v = appendParts(v, t.Object.Type, t.Object.ID, t.Relation,
		t.Subject.Object.Type, t.Subject.Object.ID, t.Subject.Relation)
	return append(v, encodeAttr(t)...)
}

func decodeChange(key, value []byte) (tuples.Change, error) {
	if len(key) != 13 || len(value) < 1 {
		return tuples.Change{}, fmt.Errorf("corrupt change %x", key)
	}
	// The attributes follow the sixth terminator.
	end, n := 1, 0
	for ; end < len(value) && n < 6; end++ {
		if value[end] == 0 {
			n++
		}
	}
	t, err := decodeForward(value[:end]) // value[0] is the op, in the tag's place
	if err != nil {
		return tuples.Change{}, err
	}
	if err := applyAttr(&t, value[end:]); err != nil {
		return tuples.Change{}, err
	}
	return tuples.Change{Revision: keyRevision(key), Op: tuples.Operation(value[0]), Tuple: t}, nil
}

// Attribute flags.
const (
	attrCaveat     = 1
	attrExpiration = 2
)

// encodeAttr encodes t's caveat and expiration: nil for a plain tuple, else a flags
// byte, the expiration (unix nanoseconds, 8 bytes big-endian) when set, and the
// caveat's name (uvarint length, bytes) and stored context (JSON, the rest) when set.
// The expiration is unix seconds (8 bytes) and nanoseconds (4 bytes), big-endian, so
// that any year fits.
func encodeAttr(t tuples.Tuple) []byte {
	if !t.Conditional() {
		return nil
	}
	var flags byte
	if t.Caveat != nil {
		flags |= attrCaveat
	}
	if !t.ExpiresAt.IsZero() {
		flags |= attrExpiration
	}
	out := []byte{flags}
	if !t.ExpiresAt.IsZero() {
		out = binary.BigEndian.AppendUint64(out, uint64(t.ExpiresAt.Unix()))
		out = binary.BigEndian.AppendUint32(out, uint32(t.ExpiresAt.Nanosecond()))
	}
	if t.Caveat != nil {
		out = binary.AppendUvarint(out, uint64(len(t.Caveat.Name)))
		out = append(out, t.Caveat.Name...)
		if len(t.Caveat.Context) > 0 {
			out = append(out, t.Caveat.ContextJSON()...)
		}
	}
	return out
}

// hasExpiry reports whether an encoded attribute carries an expiration.
func hasExpiry(attr []byte) bool { return len(attr) >= 13 && attr[0]&attrExpiration != 0 }

// expiredBy reports whether an encoded attribute's expiration is at or before now
// (unix nanoseconds).
func expiredBy(attr []byte, now int64) bool {
	if !hasExpiry(attr) {
		return false
	}
	sec := int64(binary.BigEndian.Uint64(attr[1:9]))
	nsec := int64(binary.BigEndian.Uint32(attr[9:13]))
	nowSec, nowNsec := now/1e9, now%1e9
	return sec < nowSec || sec == nowSec && nsec <= nowNsec
}

// applyAttr decodes attr into t's caveat and expiration.
func applyAttr(t *tuples.Tuple, attr []byte) error {
	if len(attr) == 0 {
		return nil
	}
	flags, rest := attr[0], attr[1:]
	if flags&attrExpiration != 0 {
		if len(rest) < 12 {
			return fmt.Errorf("corrupt attributes %x", attr)
		}
		t.ExpiresAt = time.Unix(int64(binary.BigEndian.Uint64(rest[:8])), int64(binary.BigEndian.Uint32(rest[8:12]))).UTC()
		rest = rest[12:]
	}
	if flags&attrCaveat != 0 {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return fmt.Errorf("corrupt attributes %x", attr)
		}
		c := &tuples.Caveat{Name: string(rest[k : k+int(n)])}
		if ctx := rest[k+int(n):]; len(ctx) > 0 {
			if err := json.Unmarshal(ctx, &c.Context); err != nil {
				return fmt.Errorf("corrupt caveat context: %w", err)
			}
		}
		t.Caveat = c
	}
	return nil
}

// version is one lifetime of a tuple: live at revisions [created, deleted), or from
// created on when deleted is 0, with its encoded attributes (nil when plain).
type version struct {
	created, deleted tuples.Revision
	attr             []byte
}

func decodeVersions(dst []version, v []byte) ([]version, error) {
	if len(v) > 0 && v[0] == 0 {
		v = v[1:]
		for len(v) > 0 {
			c, n := binary.Uvarint(v)
			if n <= 0 {
				return nil, fmt.Errorf("corrupt versions %x", v)
			}
			d, m := binary.Uvarint(v[n:])
			if m <= 0 {
				return nil, fmt.Errorf("corrupt versions %x", v)
			}
			l, k := binary.Uvarint(v[n+m:])
			if k <= 0 || uint64(len(v)-n-m-k) < l {
				return nil, fmt.Errorf("corrupt versions %x", v)
			}
			start := n + m + k
			var attr []byte
			if l > 0 {
				attr = bytes.Clone(v[start : start+int(l)])
			}
			dst = append(dst, version{tuples.Revision(c), tuples.Revision(d), attr})
			v = v[start+int(l):]
		}
		return dst, nil
	}
	for len(v) > 0 {
		c, n := binary.Uvarint(v)
		if n <= 0 {
			return nil, fmt.Errorf("corrupt versions %x", v)
		}
		d, m := binary.Uvarint(v[n:])
		if m <= 0 {
			return nil, fmt.Errorf("corrupt versions %x", v)
		}
		dst = append(dst, version{created: tuples.Revision(c), deleted: tuples.Revision(d)})
		v = v[n+m:]
	}
	return dst, nil
}

func encodeVersions(vs []version) []byte {
	out := make([]byte, 0, len(vs)*6)
	extended := false
	for _, v := range vs {
		extended = extended || len(v.attr) > 0
	}
	if extended {
		out = append(out, 0)
	}
	for _, v := range vs {
		out = binary.AppendUvarint(out, uint64(v.created))
		out = binary.AppendUvarint(out, uint64(v.deleted))
		if extended {
			out = binary.AppendUvarint(out, uint64(len(v.attr)))
			out = append(out, v.attr...)
		}
	}
	return out
}

// liveAttrAt reports whether a versions value has a version live at rev and returns
// that version's attributes (nil for a plain version; they alias v). A version whose
// expiration is at or before now (unix nanoseconds; 0 ignores expiration) is not
// live.
func liveAttrAt(v []byte, rev tuples.Revision, now int64) (bool, []byte, error) {
	if len(v) == 0 || v[0] != 0 {
		ok, err := liveAt(v, rev)
		return ok, nil, err
	}
	v = v[1:]
	for len(v) > 0 {
		c, n := binary.Uvarint(v)
		if n <= 0 {
			return false, nil, fmt.Errorf("corrupt versions %x", v)
		}
		d, m := binary.Uvarint(v[n:])
		if m <= 0 {
			return false, nil, fmt.Errorf("corrupt versions %x", v)
		}
		l, k := binary.Uvarint(v[n+m:])
		if k <= 0 || uint64(len(v)-n-m-k) < l {
			return false, nil, fmt.Errorf("corrupt versions %x", v)
		}
		start := n + m + k
		attr := v[start : start+int(l)]
		if tuples.Revision(c) <= rev && (d == 0 || rev < tuples.Revision(d)) {
			if now != 0 && expiredBy(attr, now) {
				return false, nil, nil
			}
			if len(attr) == 0 {
				attr = nil
			}
			return true, attr, nil
		}
		v = v[start+int(l):]
	}
	return false, nil, nil
}

// liveAt reports whether a versions value has a version live at rev, without
// allocating. It ignores expiration (see liveAttrAt).
func liveAt(v []byte, rev tuples.Revision) (bool, error) {
	if len(v) > 0 && v[0] == 0 {
		ok, _, err := liveAttrAt(v, rev, 0)
		return ok, err
	}
	for len(v) > 0 {
		c, n := binary.Uvarint(v)
		if n <= 0 {
			return false, fmt.Errorf("corrupt versions %x", v)
		}
		d, m := binary.Uvarint(v[n:])
		if m <= 0 {
			return false, fmt.Errorf("corrupt versions %x", v)
		}
		if tuples.Revision(c) <= rev && (d == 0 || rev < tuples.Revision(d)) {
			return true, nil
		}
		v = v[n+m:]
	}
	return false, nil
}

// liveNowAttr is liveNow returning the live version's attributes, for scanLive.
func liveNowAttr(v []byte) (bool, []byte, error) {
	return liveAttrAt(v, tuples.Revision(1<<63), time.Now().UnixNano())
}

// liveNow reports whether the newest version is not deleted and has not expired: the
// tuple is live at the head, including writes staged earlier in the committing group.
func liveNow(v []byte) (bool, error) {
	ok, _, err := liveAttrAt(v, tuples.Revision(1<<63), time.Now().UnixNano())
	return ok, err
}

// headAttr returns the attributes of the live version at the head (ignoring
// expiration), and whether there is one.
func headAttr(v []byte) ([]byte, bool, error) {
	ok, attr, err := liveAttrAt(v, tuples.Revision(1<<63), 0)
	return attr, ok, err
}
