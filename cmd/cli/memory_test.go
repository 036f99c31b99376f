package cli

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPlanMemory(t *testing.T) {
	t.Parallel()
	mib := func(n int64) int64 { return n << 20 }
	ptr := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		name    string
		limit   int64
		pebble  bool
		o       cacheOverrides
		want    memoryPlan
		over    bool
		wantErr string
	}{
		{
			name: "default limit", limit: mib(512), pebble: true,
			want: memoryPlan{Limit: mib(512), CheckCache: 241591910, BlockCache: mib(32), ReadCache: mib(32), GoLimit: mib(512 - 32 - 32 - 32 - 64)},
		},
		{
			name: "256MiB", limit: mib(256), pebble: true,
			want: memoryPlan{Limit: mib(256), CheckCache: 120795955, BlockCache: mib(16), ReadCache: mib(32), GoLimit: mib(256 - 16 - 32 - 32 - 32)},
		},
		{
			name: "at least one 32MiB step from 256MiB up", limit: mib(400), pebble: true,
			want: memoryPlan{Limit: mib(400), CheckCache: 188743680, BlockCache: mib(25), ReadCache: mib(32), GoLimit: mib(400 - 25 - 32 - 32 - 50)},
		},
		{
			name: "the read cache in whole 32MiB steps", limit: mib(1280), pebble: true,
			want: memoryPlan{Limit: mib(1280), CheckCache: 603979776, BlockCache: mib(80), ReadCache: mib(64), GoLimit: mib(1280 - 80 - 64 - 32 - 160)},
		},
		{
			name: "under 256MiB no read cache", limit: mib(192), pebble: true,
			want: memoryPlan{Limit: mib(192), CheckCache: 90596966, BlockCache: mib(12), ReadCache: -1, GoLimit: mib(192 - 12 - 32 - 24)},
		},
		{
			name: "a read cache override counts in whole 32MiB steps", limit: mib(512), pebble: true,
			o:    cacheOverrides{read: ptr(mib(40))},
			want: memoryPlan{Limit: mib(512), CheckCache: 241591910, BlockCache: mib(32), ReadCache: mib(40), GoLimit: mib(512 - 32 - 64 - 32 - 64)},
		},
		{
			name: "postgres: no block cache, the read cache's share", limit: mib(512),
			want: memoryPlan{Limit: mib(512), CheckCache: 241591910, ReadCache: mib(32), GoLimit: mib(512 - 32 - 64)},
		},
		{
			name: "overrides win, the Go limit shrinks by the off-heap ones", limit: mib(512), pebble: true,
			o:    cacheOverrides{check: ptr(mib(100)), block: ptr(mib(128)), read: ptr(0)},
			want: memoryPlan{Limit: mib(512), CheckCache: mib(100), BlockCache: mib(128), ReadCache: -1, GoLimit: mib(512 - 128 - 32 - 64)},
		},
		{
			name: "overrides over the budget", limit: mib(256), pebble: true,
			o:    cacheOverrides{block: ptr(mib(200))},
			over: true,
		},
		{
			name: "no limit keeps the defaults", limit: 0, pebble: true, o: cacheOverrides{check: ptr(0)},
			want: memoryPlan{CheckCache: -1},
		},
		{name: "too small", limit: mib(64), pebble: true, wantErr: "--memory-limit 64MiB is too small: at least 128MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := planMemory(tc.limit, tc.pebble, tc.o)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			if tc.over {
				require.NotEmpty(t, got.Over)
				require.Equal(t, tc.limit/4, got.GoLimit, "the Go limit keeps a floor")
				return
			}
			require.Empty(t, got.Over)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestServeMemoryLimit: serve logs the split of --memory-limit and refuses a budget
// too small to run in.
func TestServeMemoryLimit(t *testing.T) {
	p := startServe(t, "--data-dir", t.TempDir(), "--memory-limit", "256MiB", "--cache-size", "50MiB")
	logs := p.logs.String()
	require.Contains(t, logs, "memory budget")
	require.Contains(t, logs, "memory_limit=256MiB check_cache=50MiB block_cache=16MiB read_cache=32MiB go_memory_limit=144MiB")
	require.Equal(t, 0, p.stop())
	require.Equal(t, "230.4MiB", sizeString(241591910))
	got := runCLI("serve --data-dir "+t.TempDir()+" --memory-limit 64MiB", "")
	require.Contains(t, got, "--memory-limit 64MiB is too small: at least 128MiB")
	require.Contains(t, got, "exit 2")
}
