package broadcast

import (
	"crypto/rand"
	"time"
)

// An output to ffmpeg (the recording, HLS, RTMP) tells Config.OnEgress of each change in its
// life, so that the server can report it without this package knowing how (signaling sends
// LiveKit's egress webhooks). The updates of one output come one at a time, in order.

// EgressStatus is where an output stands.
type EgressStatus int

const (
	// EgressStarting: ffmpeg is starting and no media has reached it yet.
	EgressStarting EgressStatus = iota
	// EgressActive: the programme flows into ffmpeg.
	EgressActive
	// EgressRestarting: ffmpeg failed (Error says how); another one starts after a wait.
	EgressRestarting
	// EgressEnding: asked to stop, ffmpeg finishes its output.
	EgressEnding
	// EgressComplete: stopped as asked, its output complete.
	EgressComplete
	// EgressFailed: stopped, but ffmpeg had to be killed, so the output's end may be missing.
	EgressFailed
)

// The kinds of output.
const (
	EgressRecording = "recording"
	EgressHLS       = "hls"
	EgressRTMP      = "rtmp"
)

// EgressUpdate is an output's state as one of its changes left it.
type EgressUpdate struct {
	// ID is random and the same in all of one output's updates.
	ID     string
	Kind   string // EgressRecording, EgressHLS or EgressRTMP
	Status EgressStatus
	// Error is why ffmpeg last failed while Restarting, or why the output Failed.
	Error string
	// Restarts counts the ffmpeg runs that failed.
	Restarts  int
	StartedAt time.Time // when the output was started
	EndedAt   time.Time // once Complete or Failed
	// Target is where the output goes: the playlist's path for HLS, the URL with its stream
	// key hidden for RTMP; empty for the recording, whose Files say it.
	Target string
	// Files are the recording's files, one per ffmpeg run, oldest first.
	Files []EgressFile
}

// Ended says whether the output has stopped for good.
func (u EgressUpdate) Ended() bool { return u.Status == EgressComplete || u.Status == EgressFailed }

// EgressFile is one file of a recording.
type EgressFile struct {
	Path      string
	StartedAt time.Time     // when its first packet went to ffmpeg; zero if none did
	EndedAt   time.Time     // when its ffmpeg ended; zero while it runs
	Duration  time.Duration // of media: from StartedAt to EndedAt (or now)
	Size      int64         // bytes on disk when the update was made
}

// begin is the output's first update, as startEgress starts it.
func (e *egress) begin() {
	e.state = EgressUpdate{ID: rand.Text()[:16], Kind: e.kind, Target: e.target, StartedAt: time.Now()}
	e.report(func(u *EgressUpdate) bool { u.Status = EgressStarting; return true })
}

// report applies change to the output's state and, if it changed anything, tells the
// programme's observer, under the lock so that the updates go out in the order they happened.
func (e *egress) report(change func(u *EgressUpdate) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !change(&e.state) || e.observe == nil {
		return
	}
	u := e.state
	if e.files != nil {
		u.Files = e.files()
	}
	e.observe(u)
}

// flowing is told of run attempt's first packet: the output is active again, unless that run
// is over or the output is ending.
func (e *egress) flowing(attempt int) {
	e.report(func(u *EgressUpdate) bool {
		if attempt != u.Restarts || (u.Status != EgressStarting && u.Status != EgressRestarting) {
			return false
		}
		u.Status, u.Error = EgressActive, ""
		return true
	})
}

// failed is told that a run of ffmpeg stopped with err and another one will start.
func (e *egress) failed(err error) {
	e.report(func(u *EgressUpdate) bool {
		u.Status, u.Error = EgressRestarting, e.redact(err.Error())
		u.Restarts++
		return true
	})
}

// ending is told that the output was asked to stop.
func (e *egress) ending() {
	e.report(func(u *EgressUpdate) bool { u.Status = EgressEnding; return true })
}

// ended is the output's last update: failed if its last ffmpeg had to be killed.
func (e *egress) ended() {
	e.report(func(u *EgressUpdate) bool {
		u.Status, u.Error, u.EndedAt = EgressComplete, "", time.Now()
		if e.killed != "" {
			u.Status, u.Error = EgressFailed, e.killed
		}
		return true
	})
}
