//go:build !unix

package signaling

import "time"

// processCPU is not measured where getrusage does not exist: reports count no CPU time.
func processCPU() time.Duration { return 0 }
