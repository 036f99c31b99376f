package main

import (
	"strings"
	"testing"
	"time"
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
		"rss: 400 MiB at 2m0s, 440 MiB at the end: +10.0%",
		"peak 440 MiB = 86% of the 512 MiB budget",
		"by part: Go runtime +1.0 block cache +9.0 read cache +32.0 memtables +0.0 flushed memtables +0.0 rest -2.0 MiB",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("growth %q lacks %q", got, want)
		}
	}
}
