package pgstore

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pgstore/pgtest"
	"github.com/relata/relata/tuples/tuplestest"
)

// openTest opens a store on a fresh, migrated database, closed at the end of the test.
func openTest(t testing.TB, opts *Options) (*Store, string) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	_, _, err := Migrate(context.Background(), url, nil)
	require.NoError(t, err)
	return openURL(t, url, opts), url
}

// openURL opens another node on the database at url.
func openURL(t testing.TB, url string, opts *Options) *Store {
	t.Helper()
	o := Options{GCInterval: -1, MaxConns: 4}
	if opts != nil {
		o = *opts
	}
	s, err := Open(context.Background(), url, &o)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, tuples.ErrClosed) {
			t.Error(err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	tuplestest.RunAll(t, func(t *testing.T) tuples.Store {
		s, _ := openTest(t, nil)
		return s
	})
}
