//go:build unix

package cluster

import (
	"runtime"
	"syscall"
	"time"
)

// cpuMeter measures the share of the machine's CPU this process used since the last sample.
type cpuMeter struct {
	wall time.Time
	used time.Duration
}

func (m *cpuMeter) sample() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	now := time.Now()
	used := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	var share float64
	if !m.wall.IsZero() {
		if elapsed := now.Sub(m.wall); elapsed > 0 {
			share = float64(used-m.used) / float64(elapsed) / float64(runtime.NumCPU())
		}
	}
	m.wall, m.used = now, used
	return share
}
