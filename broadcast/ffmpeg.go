package broadcast

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/ingeco/hemicycle/sfu"
)

// Egress to ffmpeg: the programme's tracks are read through sinks and sent as plain RTP to an
// ffmpeg process on loopback, described to it by an SDP file. ffmpeg then copies (recording)
// or transcodes (HLS, RTMP). Every output hears the same bleeped audio, since it reads the
// programme's own tracks.

const (
	// srInterval spaces the RTCP sender reports that let ffmpeg line the streams up.
	srInterval = time.Second
	// stopGrace is how long ffmpeg has to finish its file after being asked to quit.
	stopGrace = 10 * time.Second
	// restartMin and restartMax bound the wait before restarting an ffmpeg that failed.
	restartMin = 2 * time.Second
	restartMax = 30 * time.Second
)

// tapStream is one programme track sent to ffmpeg.
type tapStream struct {
	conn   *net.UDPConn
	rtpTo  *net.UDPAddr
	rtcpTo *net.UDPAddr
	pt     uint8
	ssrc   uint32
	clock  uint32
	mime   string // "VP8/90000", "opus/48000/2"
	media  string // "video" or "audio"
	sink   sfu.Sink
	tap    *tap

	mu              sync.Mutex
	buf             [1500]byte
	hdr             rtp.Header
	lastTS          uint32
	lastAt          time.Time
	packets, octets uint32
}

// WriteRTP is the sink's delivery: rewrite payload type and SSRC to the SDP's, send.
func (s *tapStream) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if !s.tap.open.Load() {
		return 0, nil // ffmpeg is not listening yet: the packet would be lost (listening.go)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hdr = rtp.Header{Version: 2, Marker: h.Marker, PayloadType: s.pt, SequenceNumber: h.SequenceNumber, Timestamp: h.Timestamp, SSRC: s.ssrc}
	n, err := s.hdr.MarshalTo(s.buf[:])
	if err != nil || n+len(payload) > len(s.buf) {
		return 0, nil
	}
	n += copy(s.buf[n:], payload)
	// ffmpeg may not listen yet, or have quit: a refused datagram is only a lost packet.
	_, _ = s.conn.WriteToUDP(s.buf[:n], s.rtpTo)
	s.lastTS, s.lastAt = h.Timestamp, time.Now()
	if s.tap.first.CompareAndSwap(0, s.lastAt.UnixNano()) && s.tap.onFirst != nil {
		s.tap.onFirst(s.lastAt)
	}
	s.packets++
	s.octets += uint32(len(payload))
	return n, nil
}

// senderReport maps the stream's timestamps to wall-clock time, so that ffmpeg aligns audio
// and video however late each started.
func (s *tapStream) senderReport(now time.Time) {
	s.mu.Lock()
	if s.lastAt.IsZero() {
		s.mu.Unlock()
		return
	}
	ts := s.lastTS + uint32(now.Sub(s.lastAt).Seconds()*float64(s.clock))
	sr := rtcp.SenderReport{SSRC: s.ssrc, NTPTime: ntpTime(now), RTPTime: ts, PacketCount: s.packets, OctetCount: s.octets}
	s.mu.Unlock()
	if b, err := sr.Marshal(); err == nil {
		_, _ = s.conn.WriteToUDP(b, s.rtcpTo)
	}
}

// ntpTime is the 64-bit NTP timestamp of t.
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800 // seconds from 1900 to 1970
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) * (1 << 32) / 1e9
	return secs<<32 | frac
}

// tap is the set of streams feeding one ffmpeg process.
type tap struct {
	conn    *net.UDPConn
	streams []*tapStream
	first   atomic.Int64 // when the first packet went out, Unix nanoseconds
	onFirst func(time.Time)
	open    atomic.Bool // ffmpeg listens: packets go out
}

// rtpPorts are the ports ffmpeg binds for the tap's streams.
func (t *tap) rtpPorts() []int {
	ports := make([]int, len(t.streams))
	for i, s := range t.streams {
		ports[i] = s.rtpTo.Port
	}
	return ports
}

// openWhenListening lets packets out once ffmpeg has bound its ports, or at once where that
// cannot be seen; it returns when ctx ends or the tap is open.
func (t *tap) openWhenListening(ctx context.Context, log *slog.Logger, name string) {
	err := waitBound(ctx, t.rtpPorts())
	switch {
	case ctx.Err() != nil:
		return
	case errors.Is(err, errNoSocketTable):
		// Not Linux: the first packet sent stands for the file's start, as near as can be told.
	case err != nil:
		log.Warn("cannot tell whether ffmpeg listens; sending anyway", "egress", name, "err", err)
	}
	t.open.Store(true)
}

// openTap reads the given programme outputs into sinks that send to free loopback ports;
// onFirst, if not nil, is told when the first packet goes out (ffmpeg's time 0).
func openTap(outputs []Output, onFirst func(time.Time)) (*tap, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("open the socket towards ffmpeg: %w", err)
	}
	t := &tap{conn: conn, onFirst: onFirst}
	for i, o := range outputs {
		port, err := freePortPair()
		if err != nil {
			_ = conn.Close()
			return nil, err
		}
		s := &tapStream{
			tap:    t,
			conn:   conn,
			rtpTo:  &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port},
			rtcpTo: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1},
			pt:     uint8(96 + i),
			ssrc:   uint32(0x48454d00 + i), // "HEM" and the stream's index
		}
		if o.Kind == webrtc.RTPCodecTypeVideo {
			s.media, s.clock, s.mime = "video", 90000, "VP8/90000"
		} else {
			s.media, s.clock, s.mime = "audio", 48000, "opus/48000/2"
		}
		t.streams = append(t.streams, s)
	}
	for i, o := range outputs {
		s := t.streams[i]
		s.sink = o.Track.AddSink(s, sfu.QualityHigh)
	}
	return t, nil
}

// freePortPair finds an even UDP port whose successor is free too (RTP and RTCP). Another
// process may take it before ffmpeg binds it; ffmpeg then fails and is restarted.
func freePortPair() (int, error) {
	for range 50 {
		a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return 0, fmt.Errorf("find a free UDP port: %w", err)
		}
		port := a.LocalAddr().(*net.UDPAddr).Port
		_ = a.Close()
		if port%2 != 0 || port > 65000 {
			continue
		}
		b, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
		if err != nil {
			continue
		}
		_ = b.Close()
		return port, nil
	}
	return 0, errors.New("find a free UDP port pair: none after 50 tries")
}

// sdp describes the tap's streams to ffmpeg.
func (t *tap) sdp(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=%s\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n", name)
	for _, s := range t.streams {
		fmt.Fprintf(&b, "m=%s %d RTP/AVP %d\r\na=rtpmap:%d %s\r\n", s.media, s.rtpTo.Port, s.pt, s.pt, s.mime)
		if s.media == "audio" {
			fmt.Fprintf(&b, "a=fmtp:%d minptime=10;useinbandfec=1\r\n", s.pt)
		}
	}
	return b.String()
}

// reports sends sender reports until ctx ends.
func (t *tap) reports(ctx context.Context) {
	tick := time.NewTicker(srInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for _, s := range t.streams {
				s.senderReport(now)
			}
		}
	}
}

func (t *tap) close() {
	for _, s := range t.streams {
		s.sink.Close()
	}
	_ = t.conn.Close()
}

// egress runs one ffmpeg fed by the programme, restarting it if it fails, until ctx ends.
type egress struct {
	prog *Programme
	name string
	log  *slog.Logger
	// outputs picks the programme tracks to send.
	outputs []Output
	// args builds ffmpeg's arguments for the SDP file; attempt counts the starts.
	args func(sdpPath string, attempt int) ([]string, error)
	// ffmpeg is the program to run.
	ffmpeg string
	// firstPacket, if not nil, is told when each run's first packet goes out, and exited
	// when its ffmpeg has ended.
	firstPacket, exited func(time.Time)
	// secret is hidden from the logs (an RTMP stream key).
	secret string
	// cpu is the processor time ffmpeg used, in nanoseconds, over its finished runs: what an
	// output costs the server (logged, and measured by the benchmarks).
	cpu atomic.Int64

	// kind and target say what the output is in its updates (egresslife.go); files, if not
	// nil, lists its files for them. observe is the programme's Config.OnEgress.
	kind, target string
	files        func() []EgressFile
	observe      func(EgressUpdate)
	mu           sync.Mutex
	state        EgressUpdate
	killed       string // why the last ffmpeg was killed rather than finishing (under mu)

	done chan struct{}
}

// run is the egress's goroutine.
func (e *egress) run(ctx context.Context) {
	defer close(e.done)
	wait := restartMin
	for attempt := 0; ctx.Err() == nil; attempt++ {
		started := time.Now()
		err := e.once(ctx, attempt)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > restartMax {
			wait = restartMin // it ran a good while: a fresh failure
		}
		e.log.Error("ffmpeg stopped; restarting", "egress", e.name, "err", err, "in", wait)
		e.failed(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, restartMax)
	}
}

// once runs ffmpeg until it exits or ctx ends; then it asks ffmpeg to finish its output.
func (e *egress) once(ctx context.Context, attempt int) error {
	t, err := openTap(e.outputs, func(at time.Time) {
		if e.firstPacket != nil {
			e.firstPacket(at)
		}
		e.flowing(attempt)
	})
	if err != nil {
		return err
	}
	defer t.close()
	dir, err := os.MkdirTemp("", "hemicycle-"+e.name+"-")
	if err != nil {
		return fmt.Errorf("make a folder for the SDP file: %w", err)
	}
	defer os.RemoveAll(dir)
	sdpPath := filepath.Join(dir, "programme.sdp")
	if err := os.WriteFile(sdpPath, []byte(t.sdp(e.prog.room)), 0o600); err != nil {
		return fmt.Errorf("write the SDP file: %w", err)
	}
	args, err := e.args(sdpPath, attempt)
	if err != nil {
		return err
	}
	cmd := exec.Command(e.ffmpeg, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("ffmpeg stderr: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", e.ffmpeg, err)
	}
	e.log.Info("ffmpeg started", "egress", e.name, "pid", cmd.Process.Pid, "args", e.redact(strings.Join(args, " ")))
	defer func() {
		// Every path below has waited for ffmpeg to exit, which sets ProcessState.
		if st := cmd.ProcessState; st != nil {
			used := st.UserTime() + st.SystemTime()
			e.cpu.Add(int64(used))
			e.log.Info("ffmpeg used the processor", "egress", e.name, "cpu", used.Round(time.Millisecond))
		}
		if e.exited != nil {
			e.exited(time.Now())
		}
	}()
	lastLines := make(chan string, 1)
	go func() { lastLines <- e.logOutput(stderr) }()
	repCtx, stopReports := context.WithCancel(ctx)
	defer stopReports()
	go t.openWhenListening(repCtx, e.log, e.name)
	go t.reports(repCtx)

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		return fmt.Errorf("ffmpeg exited: %w (%s)", err, <-lastLines)
	case <-ctx.Done():
	}
	// Ask ffmpeg to finish (write the file's index, the playlist's end), then insist. An
	// interrupt, not "q" on stdin: ffmpeg blocked reading a silent input only sees the former,
	// and only the second one once it is transcoding.
	_ = cmd.Process.Signal(os.Interrupt)
	again := time.After(stopGrace / 4)
	select {
	case <-exited:
		<-lastLines
		e.log.Info("ffmpeg finished", "egress", e.name)
		return nil
	case <-again:
		_ = cmd.Process.Signal(os.Interrupt)
	}
	select {
	case <-exited:
		<-lastLines
		e.log.Info("ffmpeg finished", "egress", e.name)
	case <-time.After(stopGrace):
		_ = cmd.Process.Kill()
		<-exited
		<-lastLines
		e.log.Warn("ffmpeg killed after not finishing in time", "egress", e.name, "grace", stopGrace)
		e.mu.Lock()
		e.killed = fmt.Sprintf("ffmpeg killed after not finishing its output within %s", stopGrace)
		e.mu.Unlock()
	}
	return nil
}

func (e *egress) redact(s string) string {
	if e.secret == "" {
		return s
	}
	return strings.ReplaceAll(s, e.secret, "…")
}

// logOutput logs ffmpeg's stderr at debug level and returns its last lines, for the error
// when it fails.
func (e *egress) logOutput(r io.Reader) string {
	sc := bufio.NewScanner(r)
	var last []string
	for sc.Scan() {
		line := e.redact(sc.Text())
		e.log.Debug("ffmpeg", "egress", e.name, "line", line)
		last = append(last, line)
		if len(last) > 5 {
			last = last[1:]
		}
	}
	return strings.Join(last, " | ")
}

// startEgress starts an egress bound to the programme's life; after runs once it has
// stopped. The returned function stops it sooner.
func (p *Programme) startEgress(e *egress, after func()) (stop context.CancelFunc) {
	if e.ffmpeg == "" {
		e.ffmpeg = "ffmpeg"
	}
	e.prog, e.log, e.done, e.observe = p, p.log, make(chan struct{}), p.cfg.OnEgress
	e.begin()
	ctx, cancel := context.WithCancel(p.egressCtx)
	asked := make(chan struct{})
	context.AfterFunc(ctx, func() {
		e.ending()
		close(asked)
	})
	p.egressWG.Add(1)
	go func() {
		defer p.egressWG.Done()
		e.run(ctx) // returns once ctx has ended
		<-asked
		e.ended()
		if after != nil {
			after()
		}
	}()
	return cancel
}

// audioMix is the ffmpeg filter mixing the programme's audio inputs (streams 1..n of the SDP)
// into one, for outputs that carry a single audio track.
func audioMix(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "[0:a:%d]", i)
	}
	fmt.Fprintf(&b, "amix=inputs=%d:duration=longest:dropout_transition=0:normalize=0[mix]", n)
	return b.String()
}
