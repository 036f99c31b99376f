package pgstore

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/relata/relata/tuples"
)

// Import's COPY data, encoded by hand in PostgreSQL's binary COPY format: pgx's
// CopyFrom takes a row as []any and plans the encoding of every value through its
// type map, which with the boxing of six strings a row was most of the relata
// server's CPU for an import after the sort. Here each tuple's ten columns (tupleCols
// and attrCols) are encoded once into one buffer, and the readers of the tuple table's
// and the change log's COPY put the per-table columns around them as PostgreSQL
// reads: no []any, no per-value allocation, and the encoding of the next chunk
// overlaps PostgreSQL's insertion of the previous one.
//
// Binary COPY: a header ("PGCOPY\n\377\r\n\0", int32 flags, int32 extension length),
// then per row an int16 field count and per field an int32 length (-1 for NULL)
// followed by the value in the type's binary form (text: the bytes; jsonb: version
// byte 1 and the JSON text; timestamptz: int64 microseconds since 2000-01-01 UTC;
// smallint, integer, bigint: big-endian), and an int16 -1 at the end.

// copyHeader is the binary COPY header with no flags and no extension.
var copyHeader = []byte("PGCOPY\n\377\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// pgEpochMicros is 2000-01-01 00:00:00 UTC in microseconds since the Unix epoch.
const pgEpochMicros = 946684800 * 1000000

// encodedRows holds the tupleCols and attrCols fields of tuples, encoded, back to back:
// row i is buf[ends[i-1]:ends[i]] (from 0 for the first).
type encodedRows struct {
	buf  []byte
	ends []int
}

// encodeRows encodes ts (already validated: every text is valid UTF-8).
func encodeRows(ts []tuples.Tuple) *encodedRows {
	e := &encodedRows{ends: make([]int, 0, len(ts))}
	size := 0
	for i := range ts {
		t := &ts[i]
		size += 6*4 + len(t.Object.Type) + len(t.Object.ID) + len(t.Relation) + len(t.Subject.Object.Type) + len(t.Subject.Object.ID) + len(t.Subject.Relation) + 4*4
	}
	e.buf = make([]byte, 0, size+size/8)
	for i := range ts {
		t := &ts[i]
		b := e.buf
		for _, s := range [6]string{t.Object.Type, t.Object.ID, t.Relation, t.Subject.Object.Type, t.Subject.Object.ID, t.Subject.Relation} {
			b = appendText(b, s)
		}
		if t.Caveat == nil {
			b = appendNull(b, 2)
		} else {
			b = appendText(b, t.Caveat.Name)
			if len(t.Caveat.Context) == 0 {
				b = appendNull(b, 1)
			} else {
				ctx := t.Caveat.ContextJSON()
				b = binary.BigEndian.AppendUint32(b, uint32(len(ctx)+1))
				b = append(b, 1) // jsonb version
				b = append(b, ctx...)
			}
		}
		if t.ExpiresAt.IsZero() {
			b = appendNull(b, 2)
		} else {
			b = appendInt64(b, expiresMicros(t.ExpiresAt))
			b = appendInt16(b, int16(t.ExpiresAt.Nanosecond()%1000))
		}
		e.buf = b
		e.ends = append(e.ends, len(b))
	}
	return e
}

func appendText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendNull(b []byte, n int) []byte {
	for range n {
		b = binary.BigEndian.AppendUint32(b, math.MaxUint32)
	}
	return b
}

func appendInt64(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

func appendInt32(b []byte, v int32) []byte {
	b = binary.BigEndian.AppendUint32(b, 4)
	return binary.BigEndian.AppendUint32(b, uint32(v))
}

func appendInt16(b []byte, v int16) []byte {
	b = binary.BigEndian.AppendUint32(b, 2)
	return binary.BigEndian.AppendUint16(b, uint16(v))
}

// The tables' COPY statements; each reader below writes the columns in this order.
const (
	copyTupleSQL   = "COPY relata_tuple (" + tupleCols + ", " + attrCols + ", created_rev) FROM STDIN (FORMAT binary)"
	copyChangeSQL  = "COPY relata_change (rev, seq, op, " + tupleCols + ", " + attrCols + ") FROM STDIN (FORMAT binary)"
	copyStagingSQL = "COPY relata_import (" + tupleCols + ", " + attrCols + ") FROM STDIN (FORMAT binary)"
)

// copyTable says which table's rows a copyReader writes.
type copyTable int

const (
	copyTuples  copyTable = iota // relata_tuple: the fields, created_rev
	copyChanges                  // relata_change: rev, seq (the row's index), op TOUCH, the fields
	copyStaged                   // relata_import: the fields
)

// copyReader is an io.Reader of the binary COPY data of rows for one table: it
// encodes the rows as PostgreSQL's COPY asks for them, a chunk at a time.
type copyReader struct {
	rows  *encodedRows
	table copyTable
	rev   int64
	next  int    // the next row to encode
	out   []byte // encoded, not yet read
	ended bool   // the trailer is in out
}

func newCopyReader(rows *encodedRows, table copyTable, rev tuples.Revision) *copyReader {
	return &copyReader{rows: rows, table: table, rev: int64(rev), out: append([]byte(nil), copyHeader...)}
}

// Read fills p with encoded rows.
func (c *copyReader) Read(p []byte) (int, error) {
	for len(c.out) < len(p) && !c.ended {
		c.fill(len(p))
	}
	if len(c.out) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.out)
	c.out = c.out[:copy(c.out, c.out[n:])]
	return n, nil
}

// fill encodes rows into out until it holds at least want bytes or the trailer.
func (c *copyReader) fill(want int) {
	for len(c.out) < want {
		if c.next == len(c.rows.ends) {
			c.out = binary.BigEndian.AppendUint16(c.out, math.MaxUint16) // -1: the end
			c.ended = true
			return
		}
		start := 0
		if c.next > 0 {
			start = c.rows.ends[c.next-1]
		}
		fields := c.rows.buf[start:c.rows.ends[c.next]]
		switch c.table {
		case copyTuples:
			c.out = binary.BigEndian.AppendUint16(c.out, 11)
			c.out = append(c.out, fields...)
			c.out = appendInt64(c.out, c.rev)
		case copyChanges:
			c.out = binary.BigEndian.AppendUint16(c.out, 13)
			c.out = appendInt64(c.out, c.rev)
			c.out = appendInt32(c.out, int32(c.next))
			c.out = appendInt16(c.out, int16(tuples.OpTouch))
			c.out = append(c.out, fields...)
		case copyStaged:
			c.out = binary.BigEndian.AppendUint16(c.out, 10)
			c.out = append(c.out, fields...)
		}
		c.next++
	}
}

// expiresMicros is t as a timestamptz: microseconds since 2000-01-01 UTC, the
// nanoseconds within the microsecond dropped (attrsOf's truncation).
func expiresMicros(t time.Time) int64 {
	t = t.UTC()
	return t.Unix()*1000000 + int64(t.Nanosecond())/1000 - pgEpochMicros
}

// The formats of relata_change_batch.rows. changeBatchPlain: what encodeRows writes,
// each row's ten fields as in binary COPY (int32 length or -1, then the value);
// changeBatchS2: the same, compressed as one S2 block (github.com/klauspost/compress/s2).
const (
	changeBatchPlain = 1
	changeBatchS2    = 2
)

// decodeChangeBatch decodes a relata_change_batch row of format holding n changes of
// revision rev.
func decodeChangeBatch(format int16, buf []byte, n int, rev tuples.Revision) ([]tuples.Change, error) {
	switch format {
	case changeBatchPlain:
	case changeBatchS2:
		var err error
		if buf, err = s2.Decode(nil, buf); err != nil {
			return nil, fmt.Errorf("change batch: %w", err)
		}
	default:
		return nil, fmt.Errorf("change batch: format %d, this binary reads %d and %d", format, changeBatchPlain, changeBatchS2)
	}
	return decodeChanges(buf, n, rev)
}

// maxChangeBatch bounds the bytes of one relata_change_batch row (bytea holds up to
// 1 GB); a larger import logs a row a tuple instead.
const maxChangeBatch = 256 << 20

// decodeChanges decodes n rows that encodeRows encoded (changeBatchPlain) as the
// TOUCH changes of revision rev. The texts are substrings of one copy of buf.
func decodeChanges(buf []byte, n int, rev tuples.Revision) ([]tuples.Change, error) {
	data := string(buf)
	cs := make([]tuples.Change, n)
	pos := 0
	field := func() (string, bool, error) {
		if len(data)-pos < 4 {
			return "", false, fmt.Errorf("change batch: truncated at byte %d", pos)
		}
		l := int32(binary.BigEndian.Uint32(buf[pos:]))
		pos += 4
		if l < 0 {
			return "", false, nil
		}
		if len(data)-pos < int(l) {
			return "", false, fmt.Errorf("change batch: field of %d bytes at byte %d past the end", l, pos)
		}
		v := data[pos : pos+int(l)]
		pos += int(l)
		return v, true, nil
	}
	for i := range cs {
		cs[i].Revision, cs[i].Op = rev, tuples.OpTouch
		t := &cs[i].Tuple
		var f [10]string
		var ok [10]bool
		for j := range f {
			var err error
			if f[j], ok[j], err = field(); err != nil {
				return nil, err
			}
		}
		t.Object.Type, t.Object.ID, t.Relation = f[0], f[1], f[2]
		t.Subject.Object.Type, t.Subject.Object.ID, t.Subject.Relation = f[3], f[4], f[5]
		if ok[6] {
			c := &tuples.Caveat{Name: f[6]}
			if ok[7] {
				if len(f[7]) == 0 || f[7][0] != 1 {
					return nil, fmt.Errorf("change batch: row %d: caveat context is not jsonb version 1", i)
				}
				if err := json.Unmarshal([]byte(f[7][1:]), &c.Context); err != nil {
					return nil, fmt.Errorf("change batch: row %d: corrupt caveat context: %w", i, err)
				}
				if len(c.Context) == 0 {
					c.Context = nil
				}
			}
			t.Caveat = c
		}
		if ok[8] {
			if len(f[8]) != 8 || !ok[9] || len(f[9]) != 2 {
				return nil, fmt.Errorf("change batch: row %d: malformed expiration", i)
			}
			micros := int64(binary.BigEndian.Uint64([]byte(f[8])))
			nanos := int16(binary.BigEndian.Uint16([]byte(f[9])))
			t.ExpiresAt = time.UnixMicro(micros + pgEpochMicros).UTC().Add(time.Duration(nanos))
		}
	}
	if pos != len(data) {
		return nil, fmt.Errorf("change batch: %d bytes after %d rows", len(data)-pos, n)
	}
	return cs, nil
}
