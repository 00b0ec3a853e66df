package broadcast

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/ingeco/hemicycle/auth"
	bc "github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// TestViewerCapacity is a measurement, not part of the suite: with HEMICYCLE_VIEWERS=N it joins
// N watch-only viewers (Go SDK, in this process) to a room where the chair speaks on camera,
// checks that every one of them receives the programme's audio and video, and logs the CPU
// and memory used meanwhile. Server and clients share the process and its two cores, so the
// figures bound the server's cost from above. Run without -race:
//
//	HEMICYCLE_VIEWERS=200 go test -run ViewerCapacity -v -timeout 30m ./test/broadcast/
func TestViewerCapacity(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("HEMICYCLE_VIEWERS"))
	if n <= 0 {
		t.Skip("a measurement: set HEMICYCLE_VIEWERS=N to run it")
	}
	const room = "capacity"
	s := startServer(t, signaling.ProgrammeConfig{Broadcast: bc.Config{Delay: 2 * time.Second}})
	chair := s.Join(t, room, "chair", auth.RoleChair, 0, nil)
	publish(t, chair, true)

	all := make([]*signalingtest.Counter, n)
	rooms := make([]*lksdk.Room, n)
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8) // joins in flight: a crowd arrives over some seconds, not at once
	var failed atomic.Int64
	for i := range n {
		c, cb := signalingtest.NewCounter()
		all[i] = c
		tok := s.Token(t, room, fmt.Sprintf("viewer-%d", i), auth.RoleViewer, 0)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r, err := lksdk.ConnectToRoomWithToken(s.WS, tok, cb)
			if err != nil {
				failed.Add(1)
				return
			}
			rooms[i] = r
		}()
	}
	wg.Wait()
	joined := time.Since(start)
	defer func() {
		for _, r := range rooms {
			if r != nil {
				r.Disconnect()
			}
		}
	}()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d viewers could not join", f, n)
	}
	t.Logf("%d viewers joined in %s", n, joined)

	signalingtest.Eventually(t, "every viewer receives audio and video", 120*time.Second, func() bool {
		for _, c := range all {
			if c.Audio() < 50 || c.Video() < 20 {
				return false
			}
		}
		return true
	})

	// Steady state: CPU and memory over 10 s.
	before := make([]int64, n)
	for i, c := range all {
		before[i] = c.Audio()
	}
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	t0 := time.Now()
	time.Sleep(10 * time.Second)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	wall := time.Since(t0)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	minRate := 1e9
	for i, c := range all {
		rate := float64(c.Audio()-before[i]) / wall.Seconds()
		minRate = min(minRate, rate)
	}
	t.Logf("%d viewers: CPU %.0f%% of one core (server and clients together), heap %d MiB, max RSS %d MiB; slowest viewer got %.0f audio packets/s (programme: 150/s on 3 tracks)",
		n, 100*cpu.Seconds()/wall.Seconds(), ms.HeapAlloc>>20, ru1.Maxrss>>10, minRate)
	if minRate < 100 {
		t.Errorf("a viewer got only %.0f audio packets/s", minRate)
	}
}
