package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	"github.com/ingeco/hemicycle/cmd/hemicycle/clips"
)

const (
	joinTimeout       = 30 * time.Second // one bot's join, WebSocket to connected transports
	maxJoinsInFlight  = 256              // bounds the bench's own memory when the server stalls
	teardownTimeout   = 30 * time.Second // disconnecting every bot and waiting for its goroutines
	progressInterval  = 5 * time.Second
	maxErrorsReported = 10
)

// benchRun is the state of one run: its bots, what they received and its measurements.
type benchRun struct {
	cfg  benchConfig
	log  *slog.Logger
	room string
	opus []clips.Frame
	vp8  []clips.Frame

	// Media writers stop when mediaCtx ends. Readers stop when their bot disconnects.
	mediaCtx  context.Context
	stopMedia context.CancelFunc
	gmu       sync.Mutex
	gclosed   bool // no goroutine may start once the run waits for them all
	gwg       sync.WaitGroup

	mu      sync.Mutex
	bots    []*bot
	streams []*streamCounter
	errs    []string
	nerrs   int

	measuring    atomic.Bool
	delay        histogram
	joinTimes    durationSamples
	connectTimes durationSamples
	joinedOK     atomic.Int64 // joined and published; r.bots also holds those that failed after connecting
	joinFailures atomic.Int64
	sendErrors   atomic.Int64
	malformed    atomic.Int64
	// implausibleStamps counts stamps whose delay is impossible; they are not recorded.
	implausibleStamps atomic.Int64
}

// runBench runs one scenario from the first join to the last disconnect and returns the
// report. It ends by itself: the measurement window is --duration, and the whole run has a
// deadline derived from the join rate, beyond which it stops and reports what it has.
func runBench(ctx context.Context, cfg benchConfig, log *slog.Logger) (*benchReport, error) {
	plan, err := planScenario(cfg)
	if err != nil {
		return nil, err
	}
	r := &benchRun{cfg: cfg, log: log, room: cfg.Room}
	if r.room == "" {
		r.room = fmt.Sprintf("bench-%s-%s", cfg.Scenario, randomHex(4))
	}
	if r.opus, err = clips.Opus(); err != nil {
		return nil, fmt.Errorf("load Opus clip: %w", err)
	}
	if r.vp8, err = clips.VP8(); err != nil {
		return nil, fmt.Errorf("load VP8 clip: %w", err)
	}

	joinBudget := time.Duration(float64(plan.participants())/cfg.Rate*float64(time.Second)) + joinTimeout + 30*time.Second
	hardCap := joinBudget + cfg.Settle + cfg.Duration + 10*time.Second
	ctx, cancel := context.WithTimeout(ctx, hardCap)
	defer cancel()
	r.mediaCtx, r.stopMedia = context.WithCancel(context.Background())
	goroutinesBefore := runtime.NumGoroutine()

	rep := &benchReport{
		Scenario: cfg.Scenario, URL: cfg.URL, Room: r.room, Started: time.Now().UTC(),
		Councillors: zeroUnless(cfg.Scenario == scenarioCouncil, cfg.Councillors),
		Viewers:     zeroUnless(cfg.Scenario == scenarioCouncil, cfg.Viewers),
		Listeners:   zeroUnless(cfg.Scenario == scenarioAudioFanout, cfg.Listeners),
		Joins:       zeroUnless(cfg.Scenario == scenarioJoinStorm, cfg.Joins),
		Rate:        cfg.Rate, ParticipantsPlanned: plan.participants(), StreamsExpected: plan.expectedStreams,
		ServerPID: cfg.ServerPID,
	}
	if cfg.ServerPID > 0 {
		rss, err := readProcRSS(cfg.ServerPID)
		if err != nil {
			return nil, err
		}
		rep.ServerRSSBefore = rss
	}

	runErr := r.exercise(ctx, plan, rep)
	rep.BenchGoroutinesLeft = r.teardown(goroutinesBefore)
	r.finishReport(rep)
	if runErr != nil {
		return nil, runErr
	}
	if ctx.Err() != nil {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("stopped early (%v): the window is %.1f s long, not %s",
			context.Cause(ctx), rep.WindowSeconds, cfg.Duration))
	}
	return rep, nil
}

// exercise joins the plan's participants, lets the streams settle and measures the window.
func (r *benchRun) exercise(ctx context.Context, plan scenarioPlan, rep *benchReport) error {
	r.log.Info("joining senders", "room", r.room, "count", len(plan.senders), "url", r.cfg.URL)
	if n := r.joinAll(ctx, plan.senders); n < len(plan.senders) {
		return fmt.Errorf("only %d of %d publishing participants joined: %s", n, len(plan.senders), r.firstError())
	}

	r.log.Info("joining receivers", "count", len(plan.receivers), "rate", r.cfg.Rate)
	before := r.sampleCPU()
	start := time.Now()
	joined := r.joinAll(ctx, plan.receivers)
	after := r.sampleCPU()
	use := cpuBetween(before, after)
	rep.JoinPhase = joinPhase{
		Seconds: time.Since(start).Seconds(), Joined: joined, Failed: len(plan.receivers) - joined,
		ServerCPUCores: use.server, BenchCPUCores: use.bench, OtherCPUCores: use.others,
	}
	if before.server != nil && after.server != nil && joined > 0 {
		ms := float64(after.server.cpu-before.server.cpu) / float64(time.Millisecond) / float64(joined)
		rep.JoinPhase.ServerCPUMsPerJoin = &ms
	}
	if len(plan.receivers) > 0 && joined == 0 {
		return fmt.Errorf("no receiving participant joined: %s", r.firstError())
	}
	if err := r.checkServer(); err != nil {
		return err
	}

	r.settle(ctx, plan.expectedStreams)
	return r.measure(ctx, rep)
}

// joinAll starts one join per spec at the configured rate and waits for all of them; it
// returns how many joined.
func (r *benchRun) joinAll(ctx context.Context, specs []botSpec) int {
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	inFlight := make(chan struct{}, maxJoinsInFlight)
	var wg sync.WaitGroup
	var joined atomic.Int64
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for _, spec := range specs {
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case inFlight <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-inFlight }()
			jctx, cancel := context.WithTimeout(ctx, joinTimeout)
			defer cancel()
			b := &bot{spec: spec, run: r}
			if err := b.join(jctx); err != nil {
				r.joinFailures.Add(1)
				r.noteError(err)
				return
			}
			r.log.Debug("joined", "identity", spec.identity)
			joined.Add(1)
			r.joinedOK.Add(1)
		})
		next = next.Add(interval)
		timer.Reset(time.Until(next))
	}
	wg.Wait()
	return int(joined.Load())
}

// settle waits until every expected stream has delivered a packet, or --settle has passed:
// the window should measure steady forwarding, not joins.
func (r *benchRun) settle(ctx context.Context, expected int) {
	deadline := time.Now().Add(r.cfg.Settle)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if r.streamsFlowing() >= expected {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	r.log.Warn("not every stream flows; measuring anyway", "flowing", r.streamsFlowing(), "expected", expected)
}

func (r *benchRun) streamsFlowing() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.streams {
		if s.packets.Load() > 0 {
			n++
		}
	}
	return n
}

// measure runs the window: counters and CPU are read at its two ends.
func (r *benchRun) measure(ctx context.Context, rep *benchReport) error {
	if r.cfg.CPUProfile != "" {
		stop, err := startCPUProfile(r.cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	streams, starts := r.snapshotStreams(nil)
	first := r.sampleCPU()
	windowStart := time.Now()
	r.measuring.Store(true)
	r.log.Info("measuring", "duration", r.cfg.Duration, "streams", len(streams))

	end := time.NewTimer(r.cfg.Duration)
	defer end.Stop()
	progress := time.NewTicker(progressInterval)
	defer progress.Stop()
	var serverErr error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-end.C:
			break wait
		case <-progress.C:
			if serverErr = r.checkServer(); serverErr != nil {
				break wait
			}
			now := r.sampleCPU()
			_, snaps := r.snapshotStreams(streams)
			var pkts int64
			for i := range snaps {
				pkts += snaps[i].packets - starts[i].packets
			}
			secs := time.Since(windowStart).Seconds()
			attrs := []any{"elapsed", fmt.Sprintf("%.0fs", secs), "pkt/s", fmt.Sprintf("%.0f", float64(pkts)/secs)}
			use := cpuBetween(first, now)
			if use.server != nil {
				attrs = append(attrs, "server_cpu", fmt.Sprintf("%.2f", *use.server))
			}
			attrs = append(attrs, "bench_cpu", fmt.Sprintf("%.2f", use.bench))
			r.log.Info("progress", attrs...)
		}
	}
	r.measuring.Store(false)
	last := r.sampleCPU()
	// Streams that started during the window are counted from their first packet.
	streams, ends := r.snapshotStreams(nil)
	if serverErr != nil {
		return serverErr
	}
	if last.server != nil {
		rss, err := readProcRSS(r.cfg.ServerPID)
		if err != nil {
			return err
		}
		rep.ServerRSSUnderLoad = rss
	}

	window := last.self.at.Sub(first.self.at)
	rep.WindowSeconds = window.Seconds()
	for i, s := range streams {
		st := streamSnapshot{first: -1, highest: -1}
		if i < len(starts) {
			st = starts[i]
		}
		w := streamWindow(st, ends[i])
		if w.packets > 0 {
			rep.StreamsReceiving++
		}
		rep.Packets += w.packets
		rep.Bytes += w.bytes
		rep.PacketsExpected += w.expected
		rep.PacketsLost += w.lost
		if s.kind == "video" {
			rep.VideoPackets += w.packets
		} else {
			rep.AudioPackets += w.packets
		}
	}
	use := cpuBetween(first, last)
	rep.ServerCPUCores, rep.BenchCPUCores, rep.OtherCPUCores = use.server, use.bench, use.others
	rep.ServerSystemCPUCores = use.serverSystem
	rep.ServerRunQueueWait = use.serverWait
	if use.benchWait >= 0 {
		rep.BenchRunQueueWait = &use.benchWait
	}
	return nil
}

// snapshotStreams returns the streams known now (or the given ones) and their counters.
func (r *benchRun) snapshotStreams(streams []*streamCounter) ([]*streamCounter, []streamSnapshot) {
	if streams == nil {
		r.mu.Lock()
		streams = append([]*streamCounter(nil), r.streams...)
		r.mu.Unlock()
	}
	snaps := make([]streamSnapshot, len(streams))
	for i, s := range streams {
		snaps[i] = s.snapshot()
	}
	return streams, snaps
}

// cpuSample is the CPU time of the server (nil without --server-pid), of the bench and of
// the whole machine (nil if /proc/stat is unreadable), taken together.
type cpuSample struct {
	server  *procCPU
	self    procCPU
	machine *machineCPU
}

func (r *benchRun) sampleCPU() cpuSample {
	var s cpuSample
	if r.cfg.ServerPID > 0 {
		if c, err := readProcCPU(r.cfg.ServerPID); err == nil {
			s.server = &c
		} else {
			r.noteError(err)
		}
	}
	if m, err := readMachineCPU(); err == nil {
		s.machine = &m
	}
	self, err := readProcCPU(os.Getpid())
	if err != nil {
		self = procCPU{at: time.Now()}
	}
	s.self = self
	return s
}

// cpuUse is what the cores did between two samples, in cores (1.0 = one core busy).
type cpuUse struct {
	server       *float64
	serverSystem *float64 // the part of server in the kernel
	bench        float64
	// Run-queue wait per second of the server (nil unknown) and of the bench (negative unknown).
	serverWait *float64
	benchWait  float64
	// others is the machine's busy time not spent in the bench or the server: other
	// processes, the kernel's softirq work not charged to either, and hypervisor steal.
	others *float64
}

func cpuBetween(a, b cpuSample) cpuUse {
	u := cpuUse{server: coresOrNil(a.server, b.server), bench: coresBetween(a.self, b.self), benchWait: waitBetween(a.self, b.self)}
	if a.server != nil && b.server != nil {
		sys := systemCoresBetween(*a.server, *b.server)
		u.serverSystem = &sys
		if w := waitBetween(*a.server, *b.server); w >= 0 {
			u.serverWait = &w
		}
	}
	if a.machine != nil && b.machine != nil {
		wall := b.machine.at.Sub(a.machine.at)
		if wall > 0 {
			o := float64(b.machine.busy-a.machine.busy)/float64(wall) - u.bench
			if u.server != nil {
				o -= *u.server
			}
			o = max(o, 0)
			u.others = &o
		}
	}
	return u
}

func (r *benchRun) checkServer() error {
	if r.cfg.ServerPID > 0 && !lookupProcess(r.cfg.ServerPID) {
		return fmt.Errorf("server process %d is gone", r.cfg.ServerPID)
	}
	return nil
}

func coresOrNil(a, b *procCPU) *float64 {
	if a == nil || b == nil {
		return nil
	}
	c := coresBetween(*a, *b)
	return &c
}

// teardown stops the media, disconnects every bot (those whose join failed after connecting
// too) and waits for every goroutine the run started. It returns how many goroutines more than at the start are still running once it
// has waited: 0 when everything ended.
func (r *benchRun) teardown(goroutinesBefore int) int {
	r.stopMedia()
	r.mu.Lock()
	bots := r.bots
	r.mu.Unlock()
	r.log.Info("disconnecting", "participants", len(bots))

	deadline := time.Now().Add(teardownTimeout)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, b := range bots {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			b.room.Disconnect()
		})
	}
	wg.Wait()

	r.gmu.Lock()
	r.gclosed = true
	r.gmu.Unlock()
	done := make(chan struct{})
	go func() { r.gwg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
		r.log.Error("media goroutines still running after disconnect")
	}
	// The SDK ends its own goroutines shortly after Disconnect returns.
	for time.Now().Before(deadline) && runtime.NumGoroutine() > goroutinesBefore {
		time.Sleep(100 * time.Millisecond)
	}
	left := max(runtime.NumGoroutine()-goroutinesBefore, 0)
	if left > 0 {
		r.log.Warn("goroutines left after teardown", "count", left)
		if r.cfg.Verbose {
			var stacks strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			r.log.Debug("goroutines still running", "stacks", stacks.String())
		}
	}
	return left
}

// startGoroutine runs f unless the run is already waiting for its goroutines to end.
func (r *benchRun) startGoroutine(f func()) bool {
	r.gmu.Lock()
	defer r.gmu.Unlock()
	if r.gclosed {
		return false
	}
	r.gwg.Go(f)
	return true
}

func (r *benchRun) startReader(b *bot, track *webrtc.TrackRemote) {
	c := newStreamCounter(track.Kind().String())
	r.mu.Lock()
	r.streams = append(r.streams, c)
	r.mu.Unlock()
	r.startGoroutine(func() { r.readTrack(b, track, c) })
}

func (r *benchRun) startWriter(track *lksdk.LocalTrack, frames []clips.Frame, keyframeWanted *atomic.Bool) {
	r.startGoroutine(func() { r.writeTrack(track, frames, keyframeWanted) })
}

// recordDelay keeps a one-way delay. A stamp more than a second in the future or a minute
// old cannot come from this run's clock: some payload ended with the magic by chance.
func (r *benchRun) recordDelay(d time.Duration) {
	if d < -time.Second || d > time.Minute {
		r.implausibleStamps.Add(1)
		return
	}
	r.delay.record(d.Nanoseconds())
}

func (r *benchRun) addBot(b *bot) {
	r.mu.Lock()
	r.bots = append(r.bots, b)
	r.mu.Unlock()
}

// noteError keeps the first few errors for the report and counts the rest.
func (r *benchRun) noteError(err error) {
	r.log.Debug("error", "err", err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nerrs++
	if len(r.errs) < maxErrorsReported {
		r.errs = append(r.errs, err.Error())
	}
}

func (r *benchRun) firstError() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) == 0 {
		return "no error recorded"
	}
	return r.errs[0]
}

// finishReport adds what the run recorded outside the window.
func (r *benchRun) finishReport(rep *benchReport) {
	r.mu.Lock()
	rep.Errors = append([]string(nil), r.errs...)
	rep.ErrorCount = r.nerrs
	r.mu.Unlock()
	rep.ParticipantsJoined = int(r.joinedOK.Load())
	rep.JoinFailures = int(r.joinFailures.Load())
	rep.SendErrors = r.sendErrors.Load()
	rep.Malformed = r.malformed.Load()
	rep.ImplausibleStamps = r.implausibleStamps.Load()
	rep.JoinTime = newLatency(r.joinTimes.summary())
	rep.ConnectTime = newLatency(r.connectTimes.summary())
	rep.Delay = newLatency(r.delay.summary())
	rep.derive()
}

func zeroUnless(cond bool, v int) int {
	if cond {
		return v
	}
	return 0
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
