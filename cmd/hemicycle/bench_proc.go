package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicksPerSecond is USER_HZ, the unit of utime and stime in /proc/PID/stat. Linux fixes it
// at 100 for user space on every architecture we run on (sysconf(_SC_CLK_TCK) needs cgo).
const clockTicksPerSecond = 100

// procCPU is a process's CPU time, user plus system, as the kernel accounts it.
type procCPU struct {
	at     time.Time
	cpu    time.Duration
	system time.Duration // the part spent in the kernel (system calls: for an SFU, mostly sends)
	// wait is the run-queue wait summed over threads; waitKnown is false without schedstats.
	wait      time.Duration
	waitKnown bool
}

// parseProcStat reads utime+stime, and stime alone, from the text of /proc/PID/stat. The command name (field 2)
// is in parentheses and may itself hold spaces and parentheses, so fields are counted from
// the last ')'.
func parseProcStat(stat []byte) (total, system time.Duration, err error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, 0, fmt.Errorf("no ')' closing the command name in %q", truncate(stat, 80))
	}
	fields := strings.Fields(string(stat[end+1:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	const utimeAt, stimeAt = 14 - 3, 15 - 3
	if len(fields) <= stimeAt {
		return 0, 0, fmt.Errorf("only %d fields after the command name, want at least %d", len(fields), stimeAt+1)
	}
	utime, err := strconv.ParseUint(fields[utimeAt], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("utime %q: %w", fields[utimeAt], err)
	}
	stime, err := strconv.ParseUint(fields[stimeAt], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("stime %q: %w", fields[stimeAt], err)
	}
	tick := time.Second / clockTicksPerSecond
	return time.Duration(utime+stime) * tick, time.Duration(stime) * tick, nil
}

// parseVmRSS reads the resident set size from the text of /proc/PID/status.
func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want a number of kB", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS %q: %w", f[0], err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no VmRSS line (a kernel thread or a zombie has none)")
}

// readProcCPU samples a process's CPU time now.
func readProcCPU(pid int) (procCPU, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procCPU{}, fmt.Errorf("read CPU time of process %d: %w", pid, err)
	}
	cpu, system, err := parseProcStat(b)
	if err != nil {
		return procCPU{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	wait, err := readProcSchedWait(pid)
	return procCPU{at: time.Now(), cpu: cpu, system: system, wait: wait, waitKnown: err == nil}, nil
}

// waitBetween is the run-queue wait between two samples per second of wall time: 0.1 means
// the process's threads together waited 100 ms per second for a CPU. Negative when unknown.
func waitBetween(a, b procCPU) float64 {
	wall := b.at.Sub(a.at)
	if !a.waitKnown || !b.waitKnown || wall <= 0 {
		return -1
	}
	// Threads that ended in between take their wait with them: never below zero.
	return max(float64(b.wait-a.wait)/float64(wall), 0)
}

// readProcRSS samples a process's resident memory now, in bytes.
func readProcRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	rss, err := parseVmRSS(b)
	if err != nil {
		return 0, fmt.Errorf("parse /proc/%d/status: %w", pid, err)
	}
	return rss, nil
}

// coresBetween is the CPU used between two samples divided by the wall time between them: 1.0
// is one core busy all the time.
func coresBetween(a, b procCPU) float64 {
	wall := b.at.Sub(a.at)
	if wall <= 0 {
		return 0
	}
	return float64(b.cpu-a.cpu) / float64(wall)
}

// systemCoresBetween is the part of coresBetween spent in the kernel.
func systemCoresBetween(a, b procCPU) float64 {
	wall := b.at.Sub(a.at)
	if wall <= 0 {
		return 0
	}
	return float64(b.system-a.system) / float64(wall)
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}

// machineCPU is the whole machine's busy CPU time from /proc/stat, to tell whether processes
// other than the server and the bench used the cores during the window.
type machineCPU struct {
	at   time.Time
	busy time.Duration
}

// parseMachineBusy reads the aggregate "cpu" line of /proc/stat and returns the time spent
// neither idle nor waiting for I/O, summed over all CPUs. Guest time is already part of user
// time and is not added again.
func parseMachineBusy(stat []byte) (time.Duration, error) {
	sc := bufio.NewScanner(bytes.NewReader(stat))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 9 {
			return 0, fmt.Errorf("cpu line %q: want at least 8 counters", sc.Text())
		}
		var busy uint64
		// user nice system idle iowait irq softirq steal: all but idle (4) and iowait (5).
		for i := 1; i <= 8; i++ {
			if i == 4 || i == 5 {
				continue
			}
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("cpu line field %d %q: %w", i, f[i], err)
			}
			busy += v
		}
		return time.Duration(busy) * time.Second / clockTicksPerSecond, nil
	}
	return 0, fmt.Errorf("no aggregate cpu line")
}

func readMachineCPU() (machineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, fmt.Errorf("read machine CPU time: %w", err)
	}
	busy, err := parseMachineBusy(b)
	if err != nil {
		return machineCPU{}, fmt.Errorf("parse /proc/stat: %w", err)
	}
	return machineCPU{at: time.Now(), busy: busy}, nil
}

// parseSchedWait reads the time a thread spent runnable but waiting for a CPU: the second
// field of /proc/PID/task/TID/schedstat, in nanoseconds.
func parseSchedWait(schedstat []byte) (time.Duration, error) {
	f := strings.Fields(string(schedstat))
	if len(f) < 3 {
		return 0, fmt.Errorf("schedstat %q: want 3 fields", truncate(schedstat, 80))
	}
	ns, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("schedstat wait %q: %w", f[1], err)
	}
	return time.Duration(ns), nil
}

// readProcSchedWait sums the run-queue wait of every thread of a process: how long it was
// ready to run while other work had its CPU. On a machine shared with other jobs this says
// whether the server or the bench was starved during a measurement. Threads that ended
// before the sample are not counted.
func readProcSchedWait(pid int) (time.Duration, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("list threads of process %d: %w", pid, err)
	}
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread ended meanwhile
		}
		w, err := parseSchedWait(b)
		if err != nil {
			return 0, fmt.Errorf("thread %s of process %d: %w", t.Name(), pid, err)
		}
		total += w
	}
	return total, nil
}
