package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/client"
	"github.com/relata/relata/server"
	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
)

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       float64
	}{
		{"plain", "4242 (relata) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 566 0 0 20 0 12 0 100 0 0", 18.00},
		{"spaces and parens in the name", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 50 25 0 0 20 0 1 0 1 0 0", 0.75},
		{"truncated", "7 (x) R 1 7", 0},
		{"no name", "garbage", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseStatCPU(tc.stat); got != tc.want {
				t.Fatalf("parseStatCPU(%q) = %v, want %v", tc.stat, got, tc.want)
			}
		})
	}
}

func TestWork(t *testing.T) {
	prev := memorySample{cpu: 10, metrics: map[string]float64{
		"relata_check_cache_hits_total": 100, "relata_check_cache_misses_total": 100,
		"relata_read_cache_hits_total": 0, "relata_read_cache_misses_total": 0,
		"relata_pebble_block_cache_hits_total": 1000, "go_gc_duration_seconds_count": 5,
	}}
	cur := memorySample{cpu: 12, metrics: map[string]float64{
		"relata_check_cache_hits_total": 400, "relata_check_cache_misses_total": 200, "relata_check_cache_evictions_total": 7,
		"relata_read_cache_hits_total": 90, "relata_read_cache_misses_total": 10,
		"relata_pebble_block_cache_hits_total": 3000, "relata_pebble_block_cache_misses_total": 20,
		"relata_pebble_read_amplification": 3, "relata_pebble_sstables": 9, "relata_pebble_l0_files": 2,
		"go_gc_duration_seconds_count": 8,
	}}
	got := work(prev, cur, 1000, 10, 2500)
	for _, want := range []string{
		"server CPU 2.0 s (2000 µs an operation)",
		"check cache 75.0% hits (7 evictions)",
		"read cache 90.0% hits",
		"block cache 2.0 reads an operation (20 misses)",
		"Pebble read amplification 3 (9 sstables, 2 in L0)",
		"3 GCs",
		"250 resources a lookup",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("work line %q lacks %q", got, want)
		}
	}
	if got := work(memorySample{}, memorySample{}, 0, 0, 0); got != "" {
		t.Errorf("work with nothing known = %q, want empty", got)
	}
}

func TestMemoryLineNamesTheRest(t *testing.T) {
	s := memorySample{rss: 400, fileRSS: 30, metrics: map[string]float64{
		"go_memstats_sys_bytes": 300 << 20, "go_memstats_heap_released_bytes": 20 << 20,
		"relata_pebble_block_cache_bytes": 10 << 20, "relata_read_cache_bytes": 32 << 20, "relata_pebble_memtable_bytes": 16 << 20,
	}}
	got := s.line(512 << 20)
	for _, want := range []string{"RSS 400 MiB (78% of the 512 MiB budget)", "Go runtime 280 MiB", "RSS minus these 62 MiB (the binary's file-backed pages 30)"} {
		if !strings.Contains(got, want) {
			t.Errorf("memory line %q lacks %q", got, want)
		}
	}
}

func TestGrowthByPart(t *testing.T) {
	sample := func(rss, goSys, block, read float64) memorySample {
		return memorySample{rss: rss, metrics: map[string]float64{
			"go_memstats_sys_bytes": goSys * (1 << 20), "relata_pebble_block_cache_bytes": block * (1 << 20),
			"relata_read_cache_bytes": read * (1 << 20), "relata_pebble_memtable_bytes": 16 << 20,
		}}
	}
	samples := []memorySample{sample(300, 250, 2, 32), sample(400, 330, 5, 32), sample(440, 331, 14, 64)}
	got := growth(samples, time.Minute, 512<<20)
	for _, want := range []string{
		"rss: 400 MiB at 2m0s, 440 MiB at the end: +10.0% (flat: within ±10%)",
		"peak 440 MiB = 86% of the 512 MiB budget",
		"by part: Go runtime +1.0 block cache +9.0 read cache +32.0 memtables +0.0 flushed memtables +0.0 rest -2.0 MiB",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("growth %q lacks %q", got, want)
		}
	}
	samples[2] = sample(441, 331, 14, 64)
	if got := growth(samples, time.Minute, 512<<20); !strings.Contains(got, "+10.2% (NOT flat: more than ±10%)") {
		t.Errorf("growth of 10.25%% reads %q, want it called not flat", got)
	}
}

func TestChurnerKeepsAWindow(t *testing.T) {
	tup := func(i int) written { return written{object: fmt.Sprintf("doc:w%d", i), subject: "user:u1"} }
	for _, tc := range []struct {
		name         string
		window       int
		fail         map[int]bool // writes (1-based) the server fails
		deletes      map[int]int  // write → the write whose tuple it deletes
		present      []int
		absent       []int
		unknownCount int
	}{
		{name: "add only", window: 0, present: []int{1, 2, 3, 4}},
		{name: "window 2", window: 2, deletes: map[int]int{3: 1, 4: 2}, present: []int{3, 4}, absent: []int{1, 2}},
		{name: "a failed write is not verified", window: 2, fail: map[int]bool{3: true},
			deletes: map[int]int{3: 1}, present: []int{2, 4}, unknownCount: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				l ledger
				c = churner{window: tc.window}
			)
			for i := 1; i <= 4; i++ {
				ups, del, err := c.next(tup(i))
				require.NoError(t, err)
				if d, ok := tc.deletes[i]; ok {
					require.NotNil(t, del, "write %d deletes nothing", i)
					require.Equal(t, tup(d), *del, "write %d", i)
					require.Len(t, ups, 2)
					require.Equal(t, tuples.OpDelete, ups[1].Op)
				} else {
					require.Nil(t, del, "write %d deletes %v", i, del)
					require.Len(t, ups, 1)
				}
				var werr error
				if tc.fail[i] {
					werr = errors.New("unavailable")
				}
				c.done(tup(i), del, werr, &l)
			}
			present, absent := l.expect()
			want := func(is []int) []written {
				var out []written
				for _, i := range is {
					out = append(out, tup(i))
				}
				return out
			}
			require.Equal(t, want(tc.present), present)
			require.Equal(t, want(tc.absent), absent)
			require.Len(t, l.unknown, tc.unknownCount)
		})
	}
}

// TestVerifyCatchesMissingAndDeletedTuples runs churned writes against a real server
// and verifies them; a ledger that expects a deleted tuple, or that expects a present
// tuple absent, fails the verification.
func TestVerifyCatchesMissingAndDeletedTuples(t *testing.T) {
	ctx := context.Background()
	store, err := pebblestore.Open(t.TempDir(), nil)
	require.NoError(t, err)
	srv, err := server.New(server.Config{Store: store, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", PresharedKey: "sekret"})
	require.NoError(t, err)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, store.Close())
	})
	cl, err := client.New(srv.GRPCAddr().String(), client.WithToken("sekret"), client.WithInsecure())
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	_, err = cl.WriteSchema(ctx, schema)
	require.NoError(t, err)

	var (
		l ledger
		c = churner{window: 3}
	)
	for i := range 10 {
		tp := written{object: fmt.Sprintf("doc:w%d", i), subject: fmt.Sprintf("user:u%d", i%4)}
		ups, del, err := c.next(tp)
		require.NoError(t, err)
		_, err = cl.Write(ctx, ups)
		require.NoError(t, err)
		c.done(tp, del, nil, &l)
	}
	present, absent := l.expect()
	require.Len(t, present, 3)
	require.Len(t, absent, 7)
	require.Len(t, l.changes(), 17, "10 creates and 7 deletes")
	v, err := verify(ctx, cl, present, absent)
	require.NoError(t, err)
	require.True(t, v.ok(), "%s", v)
	require.Equal(t, verification{present: 3, absent: 7}, v)

	// A deleted tuple expected present is missing; a present one expected absent lingers.
	v, err = verify(ctx, cl, append(slices.Clone(present), absent[0]), append(slices.Clone(absent), present[0]))
	require.NoError(t, err)
	require.False(t, v.ok())
	require.Equal(t, verification{present: 4, absent: 8, missing: 1, lingered: 1}, v)
}

func TestStatusMiBReadsThisProcess(t *testing.T) {
	pid := os.Getpid()
	rss, file := rssMiB(pid), fileRSSMiB(pid)
	if rss <= 0 || file <= 0 || file > rss {
		t.Errorf("rssMiB = %.1f, fileRSSMiB = %.1f for this process; want 0 < file <= rss", rss, file)
	}
	if got := rssMiB(0); got != 0 {
		t.Errorf("rssMiB(0) = %.1f, want 0", got)
	}
}
