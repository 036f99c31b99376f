package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable prints the report as a table: one row per phase, then the totals and
// the server's figures. serverNote says whose figures they are ("relata serve, pid
// 123", "this process: server and bench client"); empty means they are not known.
func (r *Report) WriteTable(w io.Writer, serverNote string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tconc\tops\tops/s\titems/s\tp50\tp95\tp99\tmax\terrors\tmismatches\tserver CPU\t")
	row := func(p PhaseResult) {
		if p.Skipped != "" {
			fmt.Fprintf(tw, "%s\t%d\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t\n", p.Name, p.Concurrency)
			return
		}
		name := p.Name
		if p.Name == "load" {
			name = "load (" + p.Consistency + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t\n", name, p.Concurrency, p.Ops,
			p.OpsPerSec, p.ItemsPerSc, ms(p.Latency.P50), ms(p.Latency.P95), ms(p.Latency.P99), ms(p.Latency.Max),
			p.Errors, p.Mismatches, cpu(p.ServerCPU, serverNote))
	}
	if r.Load != nil {
		l := *r.Load
		l.Latency = Latencies{}
		row(l)
	}
	for _, p := range r.Phases {
		row(p)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var notes []string
	for _, p := range r.Phases {
		if p.Skipped != "" {
			notes = append(notes, fmt.Sprintf("%s: skipped, %s", p.Name, p.Skipped))
		}
		if p.BackgroundWrites > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d background writes moved the head", p.Name, p.BackgroundWrites))
		}
		if p.WriteLatency != nil {
			notes = append(notes, fmt.Sprintf("%s: %d writes, write latency p50 %s p95 %s p99 %s max %s",
				p.Name, p.Writes, ms(p.WriteLatency.P50), ms(p.WriteLatency.P95), ms(p.WriteLatency.P99), ms(p.WriteLatency.Max)))
		}
		if p.Conditional > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d answers conditional on missing context, as expected", p.Name, p.Conditional))
		}
		if rel, base, ok := r.relativeToCheckMin(p); ok {
			notes = append(notes, fmt.Sprintf("%s: %.0f ops/s, %.0f%% of %s's %.0f ops/s", p.Name, p.OpsPerSec, 100*rel, base.Name, base.OpsPerSec))
		}
		for _, e := range p.ErrorSamples {
			notes = append(notes, fmt.Sprintf("%s: error: %s", p.Name, e))
		}
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	fmt.Fprintf(w, "data set: %d tuples, seed %d\n", r.Tuples, r.Data.Seed)
	switch {
	case r.Server != nil && serverNote != "":
		fmt.Fprintf(w, "server (%s): RSS %s, peak RSS %s, CPU time %s\n", serverNote, mib(r.Server.RSS), mib(r.Server.PeakRSS), r.Server.CPU.Round(10*time.Millisecond))
	default:
		fmt.Fprintln(w, "server RSS and CPU: n/a (pass --server-pid for a server on this machine)")
	}
	verdict := "PASS: every answer matched the ground truth"
	if r.Failed() {
		verdict = fmt.Sprintf("FAIL: %d mismatches", r.Mismatches)
	}
	_, err := fmt.Fprintf(w, "%s (%d errors)\n", verdict, r.Errors)
	return err
}

// relativeToCheckMin returns the throughput of a caveated phase relative to the
// uncaveated check-min phase of the same concurrency in the report.
func (r *Report) relativeToCheckMin(p PhaseResult) (float64, PhaseResult, bool) {
	c, ok := strings.CutPrefix(p.Name, "check-caveated-c")
	if !ok || p.Skipped != "" {
		return 0, PhaseResult{}, false
	}
	for _, b := range r.Phases {
		if b.Name == "check-min-c"+c && b.Skipped == "" && b.OpsPerSec > 0 {
			return p.OpsPerSec / b.OpsPerSec, b, true
		}
	}
	return 0, PhaseResult{}, false
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

func cpu(d time.Duration, note string) string {
	if note == "" {
		return "n/a"
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

func mib(b int64) string {
	return strings.TrimSuffix(fmt.Sprintf("%.0f", float64(b)/(1<<20)), ".0") + " MiB"
}
