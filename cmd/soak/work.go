package main

import (
	"fmt"
	"strings"
)

// work describes what the server did between two samples, for finding why
// throughput changes over a run from counts rather than wall-clock time (which the
// machine's other load distorts): the server's CPU time per operation, how often each
// cache answered, how much Pebble read, the garbage collections, and how big the
// lookups' answers were. ops is the operations completed in the interval, lookups and
// results the lookups among them and the resources they returned.
func work(prev, cur memorySample, ops, lookups, results int) string {
	var parts []string
	if prev.cpu > 0 && cur.cpu > 0 {
		cpu := cur.cpu - prev.cpu
		s := fmt.Sprintf("server CPU %.1f s", cpu)
		if ops > 0 {
			s += fmt.Sprintf(" (%.0f µs an operation)", 1e6*cpu/float64(ops))
		}
		parts = append(parts, s)
	}
	if prev.metrics != nil && cur.metrics != nil {
		d := func(name string) float64 { return cur.metrics[name] - prev.metrics[name] }
		if h, m := d("relata_check_cache_hits_total"), d("relata_check_cache_misses_total"); h+m > 0 {
			parts = append(parts, fmt.Sprintf("check cache %.1f%% hits (%.0f evictions)", 100*h/(h+m), d("relata_check_cache_evictions_total")))
		}
		if h, m := d("relata_read_cache_hits_total"), d("relata_read_cache_misses_total"); h+m > 0 {
			parts = append(parts, fmt.Sprintf("read cache %.1f%% hits", 100*h/(h+m)))
		}
		if ops > 0 {
			parts = append(parts, fmt.Sprintf("block cache %.1f reads an operation (%.0f misses)",
				(d("relata_pebble_block_cache_hits_total")+d("relata_pebble_block_cache_misses_total"))/float64(ops), d("relata_pebble_block_cache_misses_total")))
		}
		parts = append(parts, fmt.Sprintf("Pebble read amplification %.0f (%.0f sstables, %.0f in L0)",
			cur.metrics["relata_pebble_read_amplification"], cur.metrics["relata_pebble_sstables"], cur.metrics["relata_pebble_l0_files"]))
		parts = append(parts, fmt.Sprintf("%.0f GCs", d("go_gc_duration_seconds_count")))
	}
	if lookups > 0 {
		parts = append(parts, fmt.Sprintf("%.0f resources a lookup", float64(results)/float64(lookups)))
	}
	if len(parts) == 0 {
		return ""
	}
	return "work: " + strings.Join(parts, "; ")
}
