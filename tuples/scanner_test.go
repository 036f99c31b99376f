package tuples

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestScanner(t *testing.T) {
	type line struct {
		n    int
		text string
	}
	tests := []struct {
		name    string
		input   string
		want    []line
		wantErr string
	}{
		{name: "empty", input: "", want: nil},
		{name: "no final newline", input: "a:1#r@b:2", want: []line{{1, "a:1#r@b:2"}}},
		{
			name:  "comments and blanks",
			input: "// header\n\n  flow:f1#granted@user:anne  \n\t// indented comment\nflow:f2#granted@user:bob // trailing\r\n",
			want:  []line{{3, "flow:f1#granted@user:anne"}, {5, "flow:f2#granted@user:bob"}},
		},
		{
			name:  "slashes inside an id are not a comment",
			input: "doc:a//b#viewer@user:x\n",
			want:  []line{{1, "doc:a//b#viewer@user:x"}},
		},
		{
			name:    "line too long",
			input:   "a:1#r@b:2\n" + strings.Repeat("x", MaxLineBytes+1) + "\n",
			want:    []line{{1, "a:1#r@b:2"}},
			wantErr: "2: line longer than 64 KiB",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewScanner(strings.NewReader(tt.input))
			var got []line
			for s.Scan() {
				got = append(got, line{s.Line(), s.Text()})
			}
			require.Equal(t, tt.want, got)
			if tt.wantErr == "" {
				require.NoError(t, s.Err())
				return
			}
			require.EqualError(t, s.Err(), tt.wantErr)
			require.ErrorIs(t, s.Err(), ErrLineTooLong)
		})
	}
}

func TestScannerTuple(t *testing.T) {
	s := NewScanner(strings.NewReader("flow:f1#granted@user:anne\nflow:f1#@user:anne\n"))
	require.True(t, s.Scan())
	tup, err := s.Tuple()
	require.NoError(t, err)
	require.Equal(t, "flow:f1#granted@user:anne", tup.String())
	require.Equal(t, int64(len("flow:f1#granted@user:anne\n")), s.Offset())
	require.True(t, s.Scan())
	_, err = s.Tuple()
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	require.Equal(t, "relation", verr.Field)
	require.False(t, s.Scan())
	require.NoError(t, s.Err())
}

func TestLineError(t *testing.T) {
	err := &LineError{Name: "tuples.txt", Line: 3, Text: "flow:f1#nope@user:anne", Err: errors.New("schema: type flow has no relation or permission nope")}
	require.Equal(t, "tuples.txt:3: schema: type flow has no relation or permission nope\n    flow:f1#nope@user:anne", err.Error())
	require.Equal(t, "7: boom", (&LineError{Line: 7, Err: errors.New("boom")}).Error())
}
