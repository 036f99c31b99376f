package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ProcStats are a process's resource figures read from /proc.
type ProcStats struct {
	// RSS is the resident set size now; PeakRSS is its high-water mark (VmHWM).
	RSS, PeakRSS int64
	// CPU is the user plus system CPU time the process has used.
	CPU time.Duration
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; 100 on every Linux
// platform Go supports.
const clockTicks = 100

// ReadProcStats reads the RSS and CPU time of process pid from /proc. It fails where
// /proc is not readable (not Linux, or another user's process).
func ReadProcStats(pid int) (ProcStats, error) {
	var ps ProcStats
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, fmt.Errorf("bench: reading process stats: %w", err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			continue
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if name == "VmRSS" {
			ps.RSS = kb << 10
		} else {
			ps.PeakRSS = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, fmt.Errorf("bench: reading process stats: %w", err)
	}
	// The command name (field 2) may contain spaces; fields after it start at ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return ps, fmt.Errorf("bench: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return ps, fmt.Errorf("bench: malformed /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return ps, fmt.Errorf("bench: malformed /proc/%d/stat", pid)
	}
	ps.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	return ps, nil
}
