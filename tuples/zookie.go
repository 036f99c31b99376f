package tuples

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
)

// A zookie is the opaque, URL-safe token that names a revision (design §4). Layout,
// before unpadded URL-safe base64:
//
//	byte 0      version (zookieV1)
//	bytes 1–8   revision, big-endian
//	bytes 9–12  the first 4 bytes of SHA-256(zookieSalt ‖ bytes 0–8)
//
// The checksum makes a hand-edited zookie fail to decode (a random edit passes with
// probability 2⁻³²) rather than name a different snapshot. It is not a secret MAC:
// zookies only protect callers from mistakes, and every revision a zookie could
// name is one the caller may read anyway. Strict base64 decoding keeps the encoding
// canonical, so each revision has exactly one zookie.
const (
	zookieV1   = 1
	zookieLen  = 13
	zookieSalt = "relata zookie v1"
)

var zookieEncoding = base64.RawURLEncoding.Strict()

// EncodeZookie returns the zookie of rev.
func EncodeZookie(rev Revision) string {
	var b [zookieLen]byte
	b[0] = zookieV1
	binary.BigEndian.PutUint64(b[1:9], uint64(rev))
	sum := zookieSum(b[:9])
	copy(b[9:], sum[:4])
	return zookieEncoding.EncodeToString(b[:])
}

// DecodeZookie returns the revision a zookie names. A token that is not one
// EncodeZookie produced (bad base64, wrong length or version, failed checksum) fails
// with an error wrapping ErrInvalidZookie.
func DecodeZookie(z string) (Revision, error) {
	if len(z) != zookieEncoding.EncodedLen(zookieLen) {
		return 0, fmt.Errorf("%w %q: wrong length", ErrInvalidZookie, z)
	}
	b, err := zookieEncoding.DecodeString(z)
	if err != nil || len(b) != zookieLen {
		return 0, fmt.Errorf("%w %q: not base64url", ErrInvalidZookie, z)
	}
	if b[0] != zookieV1 {
		return 0, fmt.Errorf("%w %q: unknown version %d", ErrInvalidZookie, z, b[0])
	}
	sum := zookieSum(b[:9])
	if [4]byte(b[9:13]) != [4]byte(sum[:4]) {
		return 0, fmt.Errorf("%w %q: checksum mismatch", ErrInvalidZookie, z)
	}
	return Revision(binary.BigEndian.Uint64(b[1:9])), nil
}

func zookieSum(payload []byte) [sha256.Size]byte {
	buf := make([]byte, 0, len(zookieSalt)+len(payload))
	buf = append(buf, zookieSalt...)
	buf = append(buf, payload...)
	return sha256.Sum256(buf)
}
