package tuples

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// A zookie is the opaque, URL-safe token that names a revision of one store (design
// §4). Layout, before unpadded URL-safe base64:
//
//	byte 0       version (zookieV2)
//	bytes 1–8    revision, big-endian
//	bytes 9–12   the store's tag: the first 4 bytes of SHA-256(storeTagSalt ‖ store id)
//	bytes 13–16  the first 4 bytes of SHA-256(zookieSaltV2 ‖ bytes 0–12)
//
// The tag makes a zookie of another store fail to decode rather than name a revision
// of this one (two unrelated stores share a tag with probability 2⁻³²). The checksum
// makes a hand-edited zookie fail to decode (a random edit passes with probability
// 2⁻³²). It is not a secret MAC: zookies only protect callers from mistakes, and
// every revision a zookie could name is one the caller may read anyway. Strict base64
// decoding keeps the encoding canonical, so each revision of a store has exactly one
// zookie.
//
// Version 1 (13 bytes: version, revision, checksum) named no store. Stores issued
// them before they had ids; a store accepts them up to Identity.UnnamedThrough.
const (
	zookieV1     = 1
	zookieV1Len  = 13
	zookieSaltV1 = "relata zookie v1"

	zookieV2     = 2
	zookieV2Len  = 17
	zookieSaltV2 = "relata zookie v2"
	storeTagSalt = "relata store "
)

var zookieEncoding = base64.RawURLEncoding.Strict()

// Identity names a store. A store gets its ID when it is created (or, for a store
// created before stores had ids, the first time it is opened by a Relata that names
// stores) and keeps it for life; a backup restores it with its data.
type Identity struct {
	// ID is the store's random id (NewStoreID). Zookies name it. Empty only for a
	// store without an id opened read-only, which cannot record one.
	ID string
	// UnnamedThrough is the newest revision whose zookie may name no store (version
	// 1, issued before the store had its id): the store's head when it got its id.
	// 0 means none: a store created with its id never accepts them.
	UnnamedThrough Revision
}

// NewStoreID returns a fresh random store id: 32 hex digits (128 bits).
func NewStoreID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics instead)
	return hex.EncodeToString(b[:])
}

// Zookies encodes and decodes the zookies of one store. The zero value belongs to no
// store: it encodes version-1 zookies and accepts none.
type Zookies struct {
	id  Identity
	tag [4]byte
}

// NewZookies returns the zookie codec of the store id names.
func NewZookies(id Identity) Zookies {
	z := Zookies{id: id}
	if id.ID != "" {
		sum := sha256.Sum256([]byte(storeTagSalt + id.ID))
		z.tag = [4]byte(sum[:4])
	}
	return z
}

// Encode returns the zookie of rev in this store.
func (z Zookies) Encode(rev Revision) string {
	if z.id.ID == "" {
		var b [zookieV1Len]byte
		b[0] = zookieV1
		binary.BigEndian.PutUint64(b[1:9], uint64(rev))
		sum := zookieSum(zookieSaltV1, b[:9])
		copy(b[9:], sum[:4])
		return zookieEncoding.EncodeToString(b[:])
	}
	var b [zookieV2Len]byte
	b[0] = zookieV2
	binary.BigEndian.PutUint64(b[1:9], uint64(rev))
	copy(b[9:13], z.tag[:])
	sum := zookieSum(zookieSaltV2, b[:13])
	copy(b[13:], sum[:4])
	return zookieEncoding.EncodeToString(b[:])
}

// Decode returns the revision a zookie of this store names. A token that is not a
// zookie (bad base64, wrong length or version, failed checksum), a zookie of another
// store, and a zookie naming no store beyond Identity.UnnamedThrough fail with an
// error wrapping ErrInvalidZookie.
func (z Zookies) Decode(s string) (Revision, error) {
	p, err := parseZookie(s)
	if err != nil {
		return 0, err
	}
	switch {
	case p.named && (z.id.ID == "" || p.tag != z.tag):
		return 0, fmt.Errorf("%w %q: it names another store (a zookie is valid only on the store that issued it)", ErrInvalidZookie, s)
	case !p.named && z.id.UnnamedThrough == 0:
		return 0, fmt.Errorf("%w %q: it names no store (an older relata's zookie), and every zookie of this store names it", ErrInvalidZookie, s)
	case !p.named && p.rev > z.id.UnnamedThrough:
		return 0, fmt.Errorf("%w %q: it names no store (an older relata's zookie) but a revision after %d, since when this store's zookies name it", ErrInvalidZookie, s, z.id.UnnamedThrough)
	}
	return p.rev, nil
}

// ParseZookie returns the revision a zookie of any store names, checking only its
// form (base64, length, version, checksum): a client's early check of a token. A
// store's revision comes from its own Zookies.Decode, which also checks the store.
func ParseZookie(s string) (Revision, error) {
	p, err := parseZookie(s)
	return p.rev, err
}

type parsedZookie struct {
	rev   Revision
	named bool
	tag   [4]byte
}

func parseZookie(z string) (parsedZookie, error) {
	var n int
	switch len(z) {
	case zookieEncoding.EncodedLen(zookieV1Len):
		n = zookieV1Len
	case zookieEncoding.EncodedLen(zookieV2Len):
		n = zookieV2Len
	default:
		return parsedZookie{}, fmt.Errorf("%w %q: wrong length", ErrInvalidZookie, z)
	}
	b, err := zookieEncoding.DecodeString(z)
	if err != nil || len(b) != n {
		return parsedZookie{}, fmt.Errorf("%w %q: not base64url", ErrInvalidZookie, z)
	}
	want := byte(zookieV1)
	salt := zookieSaltV1
	if n == zookieV2Len {
		want, salt = zookieV2, zookieSaltV2
	}
	if b[0] != want {
		return parsedZookie{}, fmt.Errorf("%w %q: unknown version %d", ErrInvalidZookie, z, b[0])
	}
	sum := zookieSum(salt, b[:n-4])
	if [4]byte(b[n-4:]) != [4]byte(sum[:4]) {
		return parsedZookie{}, fmt.Errorf("%w %q: checksum mismatch", ErrInvalidZookie, z)
	}
	p := parsedZookie{rev: Revision(binary.BigEndian.Uint64(b[1:9]))}
	if n == zookieV2Len {
		p.named, p.tag = true, [4]byte(b[9:13])
	}
	return p, nil
}

func zookieSum(salt string, payload []byte) [sha256.Size]byte {
	buf := make([]byte, 0, len(salt)+len(payload))
	buf = append(buf, salt...)
	buf = append(buf, payload...)
	return sha256.Sum256(buf)
}
