package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// memorySample is what the soak reads of the server at one report: its RSS (and the
// part of it that maps files: the binary's own pages), its CPU time and, when
// --metrics-url is set, the parts of its memory /metrics names (docs/operations.md)
// and the counters behind the per-interval work figures (work.go).
type memorySample struct {
	rss     float64 // MiB; 0 when unknown
	fileRSS float64 // MiB of rss that maps files; 0 when unknown
	cpu     float64 // seconds of user and system CPU; 0 when unknown
	metrics map[string]float64
}

// memoryMetrics are the /metrics families the report shows, in MiB.
var memoryMetrics = []string{
	"go_memstats_sys_bytes", "go_memstats_heap_released_bytes", "go_memstats_heap_inuse_bytes",
	"relata_check_cache_bytes", "relata_read_cache_bytes", "relata_pebble_block_cache_bytes",
	"relata_pebble_memtable_bytes", "relata_pebble_wal_bytes",
}

// sampleMemory reads pid's RSS and, when url is set, the server's /metrics.
func sampleMemory(ctx context.Context, pid int, url string) memorySample {
	s := memorySample{rss: rssMiB(pid), fileRSS: fileRSSMiB(pid), cpu: cpuSeconds(pid)}
	if url == "" {
		return s
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return s
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s
	}
	s.metrics = map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			s.metrics[f[0]] = v
		}
	}
	return s
}

func (s memorySample) mib(name string) float64 { return s.metrics[name] / (1 << 20) }

// line describes the sample: RSS against the budget, then (with metrics) the Go
// runtime's share and the caches and memtables, which fill towards their bounds.
func (s memorySample) line(budget int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "memory: RSS %.0f MiB", s.rss)
	if budget > 0 && s.rss > 0 {
		fmt.Fprintf(&b, " (%.0f%% of the %d MiB budget)", 100*s.rss/float64(budget>>20), budget>>20)
	}
	if s.metrics == nil {
		return b.String()
	}
	goRuntime := s.mib("go_memstats_sys_bytes") - s.mib("go_memstats_heap_released_bytes")
	offHeap := s.mib("relata_pebble_block_cache_bytes") + s.mib("relata_read_cache_bytes") + s.mib("relata_pebble_memtable_bytes") +
		s.mib("relata_pebble_zombie_memtable_bytes")
	fmt.Fprintf(&b, "; Go runtime %.0f MiB (heap in use %.0f, check cache %.1f); off the Go heap: block cache %.1f, read cache %.1f, memtables %.1f MiB (WAL %.1f MiB), flushed memtables still allocated %.1f MiB (%.0f; %.0f obsolete sstables pinned)",
		goRuntime, s.mib("go_memstats_heap_inuse_bytes"),
		s.mib("relata_check_cache_bytes"), s.mib("relata_pebble_block_cache_bytes"), s.mib("relata_read_cache_bytes"),
		s.mib("relata_pebble_memtable_bytes"), s.mib("relata_pebble_wal_bytes"),
		s.mib("relata_pebble_zombie_memtable_bytes"), s.metrics["relata_pebble_zombie_memtables"], s.metrics["relata_pebble_zombie_sstables"])
	if s.rss > 0 {
		// What /metrics does not name: the binary's pages (file-backed) and the rest
		// (C allocator slack and other C allocations), less the parts of the named
		// sizes that are allocated but not yet resident (the read cache's and the
		// memtables' untouched pages), which can make it negative early in a run.
		fmt.Fprintf(&b, "; RSS minus these %.0f MiB (the binary's file-backed pages %.0f)", s.rss-goRuntime-offHeap, s.fileRSS)
	}
	return b.String()
}

// rssMiB returns the resident set size of pid in MiB, from /proc; 0 when unknown.
func rssMiB(pid int) float64 { return statusMiB(pid, "VmRSS:") }

// fileRSSMiB returns the file-backed part of pid's RSS in MiB (the binary's text and
// data, shared libraries), from /proc/PID/status's RssFile; 0 when unknown.
func fileRSSMiB(pid int) float64 { return statusMiB(pid, "RssFile:") }

// statusMiB returns the kB field named field of /proc/PID/status in MiB; 0 when
// unknown.
func statusMiB(pid int, field string) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

// cpuSeconds returns the user and system CPU time pid has used, from
// /proc/PID/stat (in clock ticks of 1/100 s, Linux's USER_HZ); 0 when unknown.
func cpuSeconds(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a /proc/PID/stat line.
// The command name (field 2) is in parentheses and may hold spaces, so fields are
// counted from the last ')'.
func parseStatCPU(stat string) float64 {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return (utime + stime) / 100
}

// parseSize parses a size as serve's --memory-limit takes it: a number of bytes with
// an optional KiB, MiB or GiB suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a size: %q (e.g. 512MiB)", s)
	}
	return n * mult, nil
}

// growth is the RSS verdict at the end: the change from the sample at the end of the
// second minute to the last one, and the peak against the budget; samples come one
// per interval.
func growth(samples []memorySample, interval time.Duration, budget int64) string {
	warm := max(0, int(2*time.Minute/interval)-1)
	if len(samples) <= warm || samples[warm].rss == 0 {
		return "rss: the run is too short to compare with minute 2"
	}
	first, last := samples[warm].rss, samples[len(samples)-1].rss
	peak := 0.0
	for _, s := range samples {
		peak = max(peak, s.rss)
	}
	change := 100 * (last - first) / first
	verdict := "flat: within ±10%"
	if math.Abs(change) > 10 {
		verdict = "NOT flat: more than ±10%"
	}
	out := fmt.Sprintf("rss: %.0f MiB at %s, %.0f MiB at the end: %+.1f%% (%s); peak %.0f MiB",
		first, time.Duration(warm+1)*interval, last, change, verdict, peak)
	if budget > 0 {
		out += fmt.Sprintf(" = %.0f%% of the %d MiB budget", 100*peak/float64(budget>>20), budget>>20)
	}
	if d := samples[warm].parts(); d != nil {
		if e := samples[len(samples)-1].parts(); e != nil {
			out += "\nrss: the change from minute 2 by part:"
			for i, name := range partNames {
				out += fmt.Sprintf(" %s %+.1f", name, e[i]-d[i])
			}
			out += " MiB"
		}
	}
	return out
}

// partNames name the values of memorySample.parts.
var partNames = []string{"Go runtime", "block cache", "read cache", "memtables", "flushed memtables", "rest"}

// parts splits the RSS into the parts the memory line names, in MiB (the rest being
// RSS minus the others); nil without metrics.
func (s memorySample) parts() []float64 {
	if s.metrics == nil || s.rss == 0 {
		return nil
	}
	p := []float64{
		s.mib("go_memstats_sys_bytes") - s.mib("go_memstats_heap_released_bytes"),
		s.mib("relata_pebble_block_cache_bytes"), s.mib("relata_read_cache_bytes"),
		s.mib("relata_pebble_memtable_bytes"), s.mib("relata_pebble_zombie_memtable_bytes"),
	}
	rest := s.rss
	for _, v := range p {
		rest -= v
	}
	return append(p, rest)
}
