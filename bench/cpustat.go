package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuTimes is one line of /proc/stat: time each CPU spent in each state,
// in clock ticks.
type cpuTimes struct {
	busy, idle, steal uint64
}

// readCPUTimes returns the per-CPU times of /proc/stat, or nil where there
// is none (not Linux).
func readCPUTimes() map[string]cpuTimes {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]cpuTimes{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 9 || !strings.HasPrefix(fields[0], "cpu") || fields[0] == "cpu" {
			continue
		}
		var v [8]uint64
		for i := range v {
			v[i], _ = strconv.ParseUint(fields[i+1], 10, 64)
		}
		// user nice system idle iowait irq softirq steal
		out[fields[0]] = cpuTimes{busy: v[0] + v[1] + v[2] + v[5] + v[6], idle: v[3] + v[4], steal: v[7]}
	}
	return out
}

// cpuUse describes how the CPUs were used between two readings: per CPU,
// the share busy and the share stolen by the hypervisor (time the virtual
// CPU wanted to run and the host ran something else). Steal is noise no
// benchmark can remove; it is printed so that a reader can discount a
// phase that had a lot of it.
func cpuUse(before, after map[string]cpuTimes) (desc string, maxSteal int) {
	if before == nil || after == nil {
		return "", 0
	}
	var parts []string
	for i := 0; ; i++ {
		name := "cpu" + strconv.Itoa(i)
		a, ok1 := after[name]
		b, ok2 := before[name]
		if !ok1 || !ok2 {
			break
		}
		busy, idle, steal := a.busy-b.busy, a.idle-b.idle, a.steal-b.steal
		total := busy + idle + steal
		if total == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s busy %d%% steal %d%%", name, busy*100/total, steal*100/total))
		maxSteal = max(maxSteal, int(steal*100/total))
	}
	return strings.Join(parts, ", "), maxSteal
}

// phaseCPU describes the CPU use since before and records its steal.
func (b *bench) phaseCPU(before map[string]cpuTimes) string {
	desc, steal := cpuUse(before, readCPUTimes())
	if desc == "" {
		return "CPU use unknown"
	}
	b.steals = append(b.steals, float64(steal))
	return desc
}

// cpuTime is the CPU time the child's threads have run, from the
// scheduler's per-thread accounting (/proc/PID/task/*/schedstat, in
// nanoseconds): time the hypervisor stole is not in it. ok is false where
// there is no such accounting (not Linux).
func (c *child) cpuTime() (d time.Duration, ok bool) {
	dir := "/proc/" + strconv.Itoa(c.cmd.Process.Pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		d += time.Duration(ns)
	}
	return d, true
}
