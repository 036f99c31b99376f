package cli

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var benchTuples = flag.Int("bulk-tuples", 1_000_000, "tuples imported and exported by BenchmarkImport and BenchmarkExport")

// writeBulkFile writes n distinct tuples of bulkSchema in text form to a file in dir:
// a quarter each of flow grants to users, flow denials to role usersets, role
// memberships and wildcard grants.
func writeBulkFile(tb testing.TB, dir string, n int) string {
	tb.Helper()
	path := filepath.Join(dir, fmt.Sprintf("tuples-%d.txt", n))
	f, err := os.Create(path)
	require.NoError(tb, err)
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		switch i % 4 {
		case 0:
			fmt.Fprintf(w, "flow:flow-%d#granted@user:user-%d\n", i, i%100_003)
		case 1:
			fmt.Fprintf(w, "flow:flow-%d#denied@role:role-%d#member\n", i-1, i%1_009)
		case 2:
			fmt.Fprintf(w, "role:role-%d#member@user:user-%d\n", i%1_009, i)
		case 3:
			fmt.Fprintf(w, "flow:flow-%d#granted@user:*\n", i-3)
		}
	}
	require.NoError(tb, w.Flush())
	require.NoError(tb, f.Close())
	return path
}

// BenchmarkImport runs `relata import` of -bulk-tuples generated tuples over loopback
// gRPC into an empty on-disk store, end to end (client parsing and validation,
// streaming, server validation, Pebble writes with one sync per batch). Each
// iteration starts a fresh server, outside the timer. The tuples/s metric is the
// figure of issue 8:
//
//	go test ./cmd/cli -run '^$' -bench 'BenchmarkImport$' -benchtime 1x
func BenchmarkImport(b *testing.B) {
	n := *benchTuples
	path := writeBulkFile(b, b.TempDir(), n)
	b.ReportAllocs()
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		srv := startBulkServer(b, b.TempDir(), "127.0.0.1:0")
		b.StartTimer()
		start := time.Now()
		var out, errOut bytes.Buffer
		code := Main(context.Background(), []string{"import", "--endpoint", srv.addr, "--progress", "none", path}, strings.NewReader(""), &out, &errOut)
		elapsed += time.Since(start)
		b.StopTimer()
		require.Equal(b, ExitOK, code, errOut.String())
		require.Contains(b, out.String(), fmt.Sprintf("imported %d tuples", n))
		srv.stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "tuples/s")
}

// BenchmarkExport runs `relata export` of -bulk-tuples tuples to a discarded stdout.
//
//	go test ./cmd/cli -run '^$' -bench 'BenchmarkExport$' -benchtime 1x
func BenchmarkExport(b *testing.B) {
	n := *benchTuples
	dir := b.TempDir()
	path := writeBulkFile(b, dir, n)
	srv := startBulkServer(b, filepath.Join(dir, "db"), "127.0.0.1:0")
	defer srv.stop()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), []string{"import", "--endpoint", srv.addr, "--progress", "none", path}, strings.NewReader(""), &out, &errOut)
	require.Equal(b, ExitOK, code, errOut.String())
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		var cnt lineCounter
		errOut.Reset()
		code := Main(context.Background(), []string{"export", "--endpoint", srv.addr}, strings.NewReader(""), &cnt, &errOut)
		require.Equal(b, ExitOK, code, errOut.String())
		require.Equal(b, n, cnt.lines)
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "tuples/s")
}

// lineCounter is an io.Writer that counts lines.
type lineCounter struct{ lines int }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}
