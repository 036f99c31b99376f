package cli

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
)

// The shares of `serve --memory-limit`: the check cache (on the Go heap)
// gets 45%, Pebble's block cache 6.25% and the store's read cache 6.25% (both off the
// Go heap; the read cache in whole steps of 32 MiB, at least one from a 256MiB budget
// up, none below); Pebble's two 16 MiB memtables (off-heap too) and an eighth of the
// limit as headroom are set aside, and the Go soft memory limit (debug.SetMemoryLimit)
// is what remains: the check cache plus the working set of requests, imports and gRPC
// buffers. At the default 512MiB: check cache 230.4MiB, block cache 32MiB, read cache
// 32MiB, headroom 64MiB, Go limit 352MiB; at 256MiB: 115.2MiB, 16MiB, 32MiB, 32MiB,
// Go limit 144MiB.
//
// Why these shares (BENCHMARKS.md, the memory budget): under relata bench the check
// pool's 1.17 million answers (112 MiB at 96 bytes) must all fit the check cache, or
// the pool's cyclic order evicts most of them before their next use (at 256MiB with
// the earlier 30%, 72% of the pool's answers fit and checks cost 2.3 times the server
// CPU); the block cache sees few reads once the check and read caches are warm.
// The block cache share is all for blocks: Pebble charges its memtables against the
// cache it is given, and the store adds their size to it (pebblestore's
// memTableReserve), which this plan counts apart as memtableBytes. (Until that was
// done a 32MiB share held no block: every read of an sstable missed, which cost
// the peer workload of mostly distinct checks half its throughput; its 230k tuples
// take 8.6MiB of blocks.)
//
// The read cache and the headroom (BENCHMARKS.md, the read cache share): fastcache
// gives each of its 512 buckets one 64 KiB chunk as soon as a key lands in it (32 MiB,
// within the first minute) and further chunks only as the bucket fills, up to its
// bound; a store under writes keeps creating keys, so a 64 MiB read cache grew from
// 32 to 64 MiB over a soak's first eight minutes, while one of 32 MiB is whole from
// the start and then flat. 64 MiB against 32 MiB bought half a point of hit ratio
// under relata bench (0.5% fewer misses; no difference in server CPU per check
// beyond the noise) and nothing under the peer workload (whose reads fit in 32 MiB).
// The headroom covers what the other parts do not count: the binary's own resident
// pages (31-38 MiB, whatever the budget), the Go runtime's overshoot of its soft
// limit and Pebble's allocations besides its caches; a sixteenth (32 MiB at 512MiB)
// let a process with every cache full reach 505-517 MiB.
const (
	checkCacheShare    = 0.45
	blockCacheShare    = 0.0625
	readCacheShare     = 0.0625
	readCacheStep      = 32 << 20 // fastcache allocates 512 buckets of 64 KiB chunks
	minReadCacheLimit  = 256 << 20
	memtableBytes      = 32 << 20
	headroomDivisor    = 8
	minMemoryLimit     = 128 << 20
	defaultMemoryLimit = 512 << 20
)

// memoryPlan is how serve sizes its caches and the Go soft memory limit.
type memoryPlan struct {
	// Limit is --memory-limit; 0 when there is no budget.
	Limit int64
	// CheckCache, BlockCache and ReadCache are the cache sizes in bytes (a negative
	// CheckCache or ReadCache disables that cache, as their options say).
	CheckCache, BlockCache, ReadCache int64
	// GoLimit is the Go soft memory limit to set; 0 leaves the runtime's.
	GoLimit int64
	// Over, when set, says that the overrides exceed the budget.
	Over string
}

// cacheOverrides are the individual cache flags given explicitly (nil when not).
type cacheOverrides struct {
	check, block, read *int64
}

// planMemory splits limit into cache sizes and the Go soft memory limit; explicit
// cache flags override their share (and the Go limit shrinks by what the off-heap
// ones take). pebble is false for the PostgreSQL datastore, which has no block cache
// (its read cache takes the same share as Pebble's). limit 0 means no budget: the caches take their packages' defaults and
// the Go limit is left alone.
func planMemory(limit int64, pebble bool, o cacheOverrides) (memoryPlan, error) {
	if limit != 0 && limit < minMemoryLimit {
		return memoryPlan{}, usageError("serve: --memory-limit %s is too small: at least %s (or 0 for no limit)",
			sizeString(limit), sizeString(minMemoryLimit))
	}
	p := memoryPlan{Limit: limit}
	if limit > 0 {
		p.CheckCache = int64(float64(limit) * checkCacheShare)
		if pebble {
			p.BlockCache = int64(float64(limit) * blockCacheShare)
		}
		p.ReadCache = int64(float64(limit)*readCacheShare) / readCacheStep * readCacheStep
		switch {
		case limit < minReadCacheLimit:
			p.ReadCache = -1 // under 256MiB: no room for fastcache's smallest size
		case p.ReadCache == 0:
			p.ReadCache = readCacheStep // 256MiB up to 511MiB: one step
		}
	}
	if o.check != nil {
		p.CheckCache = *o.check
		if p.CheckCache == 0 {
			p.CheckCache = -1 // the flag's 0 disables; check.Options: negative disables
		}
	}
	if o.block != nil {
		p.BlockCache = *o.block
	}
	if o.read != nil {
		p.ReadCache = *o.read
		if p.ReadCache == 0 {
			p.ReadCache = -1
		}
	}
	if limit == 0 {
		return p, nil
	}
	// fastcache rounds a read cache up to whole steps.
	offHeap := max(p.BlockCache, 0) + (max(p.ReadCache, 0)+readCacheStep-1)/readCacheStep*readCacheStep
	if pebble {
		offHeap += memtableBytes
	}
	p.GoLimit = limit - offHeap - limit/headroomDivisor
	if floor := limit / 4; p.GoLimit < floor || max(p.CheckCache, 0) > p.GoLimit {
		p.Over = fmt.Sprintf("the cache sizes given (check %s, block %s, read %s) leave less than a quarter of --memory-limit %s to the Go heap",
			sizeString(max(p.CheckCache, 0)), sizeString(max(p.BlockCache, 0)), sizeString(max(p.ReadCache, 0)), sizeString(limit))
		p.GoLimit = max(p.GoLimit, floor)
	}
	return p, nil
}

// applyGoLimit sets the Go soft memory limit of the plan, unless GOMEMLIMIT is set in
// the environment (which then wins), and returns how to restore the previous one.
func applyGoLimit(p memoryPlan) (restore func(), fromEnv bool) {
	if p.GoLimit <= 0 {
		return func() {}, false
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return func() {}, true
	}
	prev := debug.SetMemoryLimit(p.GoLimit)
	return func() { debug.SetMemoryLimit(prev) }, false
}

// sizeString prints a size as flags take it (512MiB), or to a tenth of a MiB when it
// is not a whole number of KiB (230.4MiB, 45% of 512MiB).
func sizeString(n int64) string {
	if n >= 1<<20 && n%(1<<10) != 0 {
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "MiB"
	}
	b := byteSize(n)
	return b.String()
}
