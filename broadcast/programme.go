package broadcast

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ingeco/hemicycle/sfu"
)

// Defaults of Config.
const (
	DefaultDelay            = 10 * time.Second
	DefaultAudioTracks      = 3
	DefaultKeyframeInterval = 2 * time.Second
)

const (
	// tick is how often held packets are released; it bounds the delay's jitter.
	tick = 5 * time.Millisecond
	// slateInterval is the slate's frame period (5 fps: it is a still picture).
	slateInterval = 200 * time.Millisecond
	// slatePayload is the largest VP8 chunk per slate packet.
	slatePayload = 1100
	// queueLimit bounds the packets held per output, whatever the delay: 30 s of a 2.5 Mb/s
	// camera, far above a sane configuration.
	queueLimit = 1 << 14
)

// Names of the programme's tracks, as viewers see them.
const (
	TrackVideo       = "programme-video"
	TrackInterpreter = "programme-interpreter"
	TrackAudioPrefix = "programme-audio-"
)

// VideoCodec is the programme's video codec: the cameras' VP8 is forwarded without
// transcoding, so a source in another codec cannot go on air (the slate shows instead).
var VideoCodec = webrtc.RTPCodecParameters{
	RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
	PayloadType:        96,
}

// AudioCodec is the programme's audio codec.
var AudioCodec = webrtc.RTPCodecParameters{
	RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1",
	},
	PayloadType: 111,
}

// Config sets up a programme.
type Config struct {
	// Delay is how long after the room the public sees and hears it (DefaultDelay when 0).
	Delay time.Duration
	// AudioTracks is how many microphones are carried at once (DefaultAudioTracks when 0).
	AudioTracks int
	// KeyframeInterval is how often the cameras on air are asked for a keyframe, so that a
	// viewer or a recorder joining the delayed stream can start within that time.
	KeyframeInterval time.Duration
	Logger           *slog.Logger
	// OnEgress, if not nil, is told of every change of the recording's, HLS's and RTMP's
	// life (egresslife.go). It is called with a lock held, on the media path for the first
	// packet of a run: it must only take note, never block.
	OnEgress func(EgressUpdate)
	// CaptionsLanguage (BCP 47: "fr") and CaptionsName (as players list it: "Français") name
	// the captions in HLS's subtitles rendition and the recording's captions files (webvtt.go).
	CaptionsLanguage, CaptionsName string
}

// Source is a published track as the programme reads it: its kind and codec, to refuse what it
// cannot forward without transcoding, and sinks that deliver its packets from a keyframe (and
// ask its publisher for more). *sfu.PublishedTrack is one; the tests feed recorded clips.
type Source interface {
	Kind() webrtc.RTPCodecType
	MimeType() string
	AddSink(w sfu.SinkWriter, q sfu.Quality) sfu.Sink
}

// Selection says what is on air, as decided from the room: the speaker's camera, the
// interpreter's, and the open microphones by priority (only the first AudioTracks are carried).
// An absent source is a nil interface, not a nil *sfu.PublishedTrack in one.
type Selection struct {
	Main        Source // nil: the slate
	Interpreter Source // nil: nothing
	Audio       []Source
}

// Output is one track of the programme.
type Output struct {
	Name  string
	Kind  webrtc.RTPCodecType
	Track *sfu.PublishedTrack
}

// Bleep is an interval whose audio is replaced by the tone in every public output. To is zero
// while the bleep runs.
type Bleep struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to,omitzero"`
}

// Programme is the delayed public programme of one room.
type Programme struct {
	room   string
	cfg    Config
	log    *slog.Logger
	fx     *fixtures
	start  time.Time // the programme clock's origin (monotonic)
	video  *videoOutput
	interp *videoOutput
	audio  []*audioOutput
	bleeps bleepLog
	// captions are the outputs writing the released caption lines (webvtt.go).
	captions captionSinks

	selMu sync.Mutex // orders Select calls

	retMu   sync.Mutex
	retired []sfu.Sink

	keyframeWanted [2]atomic.Bool // video, interpreter: a viewer asked

	dataMu   sync.Mutex
	data     []heldData
	lastData [2][]byte // the newest state and bleep messages released, for new watchers
	watchers map[chan []byte]struct{}

	egressWG     sync.WaitGroup // recording, HLS, RTMP
	egressCtx    context.Context
	egressCancel context.CancelFunc

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

type heldData struct {
	at  int64
	msg []byte
}

// New starts the programme of room: its tracks exist at once (silence and the slate until
// Select puts sources on air). It ends when ctx ends or Close is called.
func New(ctx context.Context, engine *sfu.Engine, room string, cfg Config) (*Programme, error) {
	if cfg.Delay == 0 {
		cfg.Delay = DefaultDelay
	}
	if cfg.Delay < 0 {
		return nil, fmt.Errorf("broadcast: negative delay %s", cfg.Delay)
	}
	if cfg.AudioTracks <= 0 {
		cfg.AudioTracks = DefaultAudioTracks
	}
	if cfg.KeyframeInterval <= 0 {
		cfg.KeyframeInterval = DefaultKeyframeInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	fx, err := loadFixtures()
	if err != nil {
		return nil, fmt.Errorf("broadcast: embedded media: %w", err)
	}
	p := &Programme{
		room:     room,
		cfg:      cfg,
		log:      cfg.Logger.With("part", "programme", "room", room),
		fx:       fx,
		start:    time.Now(),
		watchers: map[chan []byte]struct{}{},
		done:     make(chan struct{}),
	}
	var writers []*sfu.LocalWriter
	fail := func(err error) (*Programme, error) {
		for _, w := range writers {
			w.Close()
		}
		return nil, err
	}
	streamID := "programme"
	for i, name := range []string{TrackVideo, TrackInterpreter} {
		o := &videoOutput{name: name, prog: p, pt: uint8(VideoCodec.PayloadType), q: newDelayQueue(256, queueLimit), still: fx.slate}
		if name == TrackInterpreter {
			o.still = fx.blank
		}
		o.m = sfu.NewMunger(VideoCodec.ClockRate)
		wanted := &p.keyframeWanted[i]
		o.track, o.writer, err = engine.NewLocalTrack(VideoCodec, name, streamID, func() { wanted.Store(true) })
		if err != nil {
			return fail(fmt.Errorf("broadcast: %w", err))
		}
		writers = append(writers, o.writer)
		if i == 0 {
			p.video = o
		} else {
			p.interp = o
		}
	}
	for i := range cfg.AudioTracks {
		o := &audioOutput{index: i, prog: p, pt: uint8(AudioCodec.PayloadType), q: newDelayQueue(64, queueLimit)}
		o.track, o.writer, err = engine.NewLocalTrack(AudioCodec, fmt.Sprintf("%s%d", TrackAudioPrefix, i), streamID, nil)
		if err != nil {
			return fail(fmt.Errorf("broadcast: %w", err))
		}
		writers = append(writers, o.writer)
		p.audio = append(p.audio, o)
	}
	// Until a camera is chosen, the slate is on air, and the blank in the interpreter's place.
	p.video.want(nil, true)
	p.interp.want(nil, true)
	p.ctx, p.cancel = context.WithCancel(ctx)
	// The outputs to ffmpeg outlive the programme's context: they are stopped first, and the
	// programme goes on releasing packets until ffmpeg has finished its files.
	p.egressCtx, p.egressCancel = context.WithCancel(context.Background())
	go p.run()
	p.log.Info("programme started", "delay", cfg.Delay, "audioTracks", cfg.AudioTracks)
	return p, nil
}

// clock is the programme time: monotonic nanoseconds since the start.
func (p *Programme) clock() int64 { return int64(time.Since(p.start)) }

// wall turns a programme time into wall-clock time.
func (p *Programme) wall(t int64) time.Time { return p.start.Add(time.Duration(t)) }

// Room is the room the programme shows.
func (p *Programme) Room() string { return p.room }

// Delay is the configured delay.
func (p *Programme) Delay() time.Duration { return p.cfg.Delay }

// Outputs lists the programme's tracks: the video, the interpreter's video, then the audio.
func (p *Programme) Outputs() []Output {
	out := []Output{
		{Name: TrackVideo, Kind: webrtc.RTPCodecTypeVideo, Track: p.video.track},
		{Name: TrackInterpreter, Kind: webrtc.RTPCodecTypeVideo, Track: p.interp.track},
	}
	for _, a := range p.audio {
		out = append(out, Output{Name: a.track.ID(), Kind: webrtc.RTPCodecTypeAudio, Track: a.track})
	}
	return out
}

// Done is closed once the programme has stopped and its tracks have ended.
func (p *Programme) Done() <-chan struct{} { return p.done }

// Close stops the programme and waits for it.
func (p *Programme) Close() {
	if p.cancel != nil {
		p.cancel()
	}
	<-p.done
}

// Select puts sources on air. Sources of another codec than the programme's are refused (the
// slate shows for a camera, the microphone is left out).
func (p *Programme) Select(sel Selection) {
	p.selMu.Lock()
	defer p.selMu.Unlock()
	if p.ctx.Err() != nil {
		return // stopped: no new sink may open
	}
	if sel.Main != nil && !p.usable(sel.Main, webrtc.RTPCodecTypeVideo) {
		sel.Main = nil
	}
	if sel.Interpreter != nil && !p.usable(sel.Interpreter, webrtc.RTPCodecTypeVideo) {
		sel.Interpreter = nil
	}
	p.selectVideo(p.video, sel.Main, true)
	// Without an interpreter the blank goes on: ffmpeg's overlay waits for pictures on both
	// its inputs. Viewers' pages hide the track while the room has no interpreter.
	p.selectVideo(p.interp, sel.Interpreter, true)

	var wanted []Source
	for _, t := range sel.Audio {
		if t != nil && p.usable(t, webrtc.RTPCodecTypeAudio) && !slices.Contains(wanted, t) && len(wanted) < len(p.audio) {
			wanted = append(wanted, t)
		}
	}
	// A microphone already carried keeps its track, so that no viewer hears a switch.
	var free []*audioOutput
	for _, o := range p.audio {
		src := o.source()
		if i := slices.Index(wanted, src); src != nil && i >= 0 {
			wanted = slices.Delete(wanted, i, i+1)
			continue
		}
		free = append(free, o)
	}
	for _, o := range free {
		var t Source
		if len(wanted) > 0 {
			t, wanted = wanted[0], wanted[1:]
		}
		opened, retired := o.set(t)
		if retired != nil {
			p.retire(retired.sink)
		}
		if opened != nil {
			s := opened.track.AddSink(opened, sfu.QualityHigh)
			if !o.attach(opened, s) {
				s.Close()
			}
		}
	}
}

func (p *Programme) usable(t Source, kind webrtc.RTPCodecType) bool {
	if t.Kind() != kind {
		return false
	}
	switch kind {
	case webrtc.RTPCodecTypeVideo:
		return equalFoldASCII(t.MimeType(), VideoCodec.MimeType)
	default:
		return equalFoldASCII(t.MimeType(), webrtc.MimeTypeOpus) || equalFoldASCII(t.MimeType(), "audio/red")
	}
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func (p *Programme) selectVideo(o *videoOutput, t Source, slate bool) {
	opened, retired := o.want(t, slate && t == nil)
	for _, f := range retired {
		p.retire(f.sink)
	}
	if opened != nil {
		s := opened.track.AddSink(opened, sfu.QualityHigh)
		if !o.attach(opened, s) {
			s.Close()
		}
	}
}

// retire schedules a sink to be closed by the run loop: it may be called from a sink's own
// delivery, where closing would wait on a lock held up the stack.
func (p *Programme) retire(s sfu.Sink) {
	if s == nil {
		return
	}
	p.retMu.Lock()
	p.retired = append(p.retired, s)
	p.retMu.Unlock()
}

func (p *Programme) closeRetired() {
	p.retMu.Lock()
	sinks := p.retired
	p.retired = nil
	p.retMu.Unlock()
	for _, s := range sinks {
		s.Close()
	}
}

// On the air: the bleep.

// ErrBleepTooLate refuses a bleep reaching back further than the delay: that audio is public.
var ErrBleepTooLate = errors.New("the audio asked for has already been broadcast")

// Bleep starts (on) or ends the bleep now. changed is false when it was already in that state.
func (p *Programme) Bleep(on bool) (b Bleep, changed bool) {
	now := p.clock()
	var s span
	if on {
		s, changed = p.bleeps.on(now)
	} else {
		s, changed = p.bleeps.off(now)
	}
	b = p.bleepOf(s)
	if changed {
		p.log.Info("bleep", "on", on, "from", b.From, "to", b.To)
		p.postAt(now, bleepMessage(on))
	}
	return b, changed
}

// BleepLast bleeps the last d of the room, which the public has not heard yet if d is within
// the delay.
func (p *Programme) BleepLast(d time.Duration) (Bleep, error) {
	if d <= 0 {
		return Bleep{}, fmt.Errorf("bleep the last %s: the duration must be positive", d)
	}
	if d > p.cfg.Delay {
		return Bleep{}, fmt.Errorf("bleep the last %s: %w (only the last %s are still held)", d, ErrBleepTooLate, p.cfg.Delay)
	}
	now := p.clock()
	from := now - int64(d)
	b := p.bleepOf(p.bleeps.add(from, now))
	p.log.Info("bleep of the last seconds", "seconds", d.Seconds(), "from", b.From, "to", b.To)
	p.postAt(from, bleepMessage(true))
	if !p.bleeps.covers(now) {
		p.postAt(now, bleepMessage(false))
	}
	return b, nil
}

// Bleeps lists the intervals bleeped so far, oldest first.
func (p *Programme) Bleeps() []Bleep {
	var out []Bleep
	for _, s := range p.bleeps.all() {
		out = append(out, p.bleepOf(s))
	}
	return out
}

func (p *Programme) bleepOf(s span) Bleep {
	b := Bleep{From: p.wall(s.from)}
	if s.to != open {
		b.To = p.wall(s.to)
	}
	return b
}

// The session's state, delayed like the media.

// Post queues a message (the session's state) to reach the watchers after the delay.
func (p *Programme) Post(msg []byte) { p.postAt(p.clock(), msg) }

// postAt queues a message as if posted at programme time at (in the past for a bleep of the
// last seconds), keeping the queue in time order.
func (p *Programme) postAt(at int64, msg []byte) {
	p.dataMu.Lock()
	defer p.dataMu.Unlock()
	i := len(p.data)
	for i > 0 && p.data[i-1].at > at {
		i--
	}
	p.data = slices.Insert(p.data, i, heldData{at: at, msg: msg})
}

// bleepMessage tells the watchers, when it reaches them with the media, that the audio is
// being bleeped or no longer is, so that a page can say so.
func bleepMessage(on bool) []byte {
	if on {
		return []byte(`{"type":"bleep","on":true}`)
	}
	return []byte(`{"type":"bleep","on":false}`)
}

// Watch returns a channel of the delayed messages, starting with the newest one already
// released, and a function to stop watching. A watcher that does not keep up misses messages
// (each is a whole state).
func (p *Programme) Watch() (<-chan []byte, func()) {
	ch := make(chan []byte, 8)
	p.dataMu.Lock()
	for _, m := range p.lastData {
		if m != nil {
			ch <- m
		}
	}
	p.watchers[ch] = struct{}{}
	p.dataMu.Unlock()
	return ch, func() {
		p.dataMu.Lock()
		delete(p.watchers, ch)
		p.dataMu.Unlock()
	}
}

func (p *Programme) releaseData(cutoff int64) {
	p.dataMu.Lock()
	defer p.dataMu.Unlock()
	n := 0
	for n < len(p.data) && p.data[n].at <= cutoff {
		for w := range p.watchers {
			select {
			case w <- p.data[n].msg:
			default:
			}
		}
		kind := 0
		if bytes.HasPrefix(p.data[n].msg, []byte(`{"type":"bleep"`)) {
			kind = 1
		}
		p.lastData[kind] = p.data[n].msg
		n++
	}
	if n > 0 {
		p.data = slices.Delete(p.data, 0, n)
	}
}

// run releases what has waited long enough, feeds the slate and asks the cameras on air for
// keyframes.
func (p *Programme) run() {
	defer close(p.done)
	t := time.NewTicker(tick)
	defer t.Stop()
	var lastSlate, lastKeyframe int64
	ending := p.ctx.Done()
	var egressDone chan struct{}
	for {
		select {
		case <-ending:
			ending = nil
			p.egressCancel()
			egressDone = make(chan struct{})
			go func() {
				p.egressWG.Wait()
				close(egressDone)
			}()
			continue
		case <-egressDone:
			p.shutdown()
			return
		case <-t.C:
		}
		now := p.clock()
		cutoff := now - int64(p.cfg.Delay)
		p.video.release(cutoff)
		p.interp.release(cutoff)
		for _, a := range p.audio {
			a.emit(cutoff, p.fx, &p.bleeps)
		}
		p.releaseData(cutoff)

		if now-lastSlate >= int64(slateInterval) {
			lastSlate = now
			for _, o := range []*videoOutput{p.video, p.interp} {
				if f := o.slateFeed(); f != nil {
					p.sendSlate(o, f)
				}
			}
		}
		periodic := now-lastKeyframe >= int64(p.cfg.KeyframeInterval)
		if periodic {
			lastKeyframe = now
		}
		for i, o := range []*videoOutput{p.video, p.interp} {
			if p.keyframeWanted[i].Swap(false) || periodic {
				if s := o.keyframeSink(); s != nil {
					s.RequestKeyframe()
				}
			}
		}
		p.closeRetired()
	}
}

// slateState numbers one slate feed's packets; only the run loop touches it.
type slateState struct {
	sn    uint16
	ts    uint32
	frame int
}

func (p *Programme) sendSlate(o *videoOutput, f *videoFeed) {
	st := &f.slate
	frame := o.still[st.frame%len(o.still)]
	st.frame++
	var pkt [slatePayload + 1]byte
	for off := 0; off < len(frame); {
		n := min(slatePayload, len(frame)-off)
		pkt[0] = 0 // VP8 payload descriptor: no extensions, partition 0
		if off == 0 {
			pkt[0] = 0x10 // S: start of the frame
		}
		copy(pkt[1:], frame[off:off+n])
		off += n
		o.ingest(f, st.sn, st.ts, off == len(frame), pkt[:1+n])
		st.sn++
	}
	st.ts += uint32(VideoCodec.ClockRate) * uint32(slateInterval/time.Millisecond) / 1000
}

func (p *Programme) shutdown() {
	p.selMu.Lock()
	p.selectVideo(p.video, nil, false)
	p.selectVideo(p.interp, nil, false)
	for _, o := range p.audio {
		if _, retired := o.set(nil); retired != nil {
			p.retire(retired.sink)
		}
	}
	p.selMu.Unlock()
	p.closeRetired()
	p.video.writer.Close()
	p.interp.writer.Close()
	for _, o := range p.audio {
		o.writer.Close()
	}
	p.dataMu.Lock()
	clear(p.watchers)
	p.dataMu.Unlock()
	p.egressWG.Wait() // the files are complete when Close returns
	p.log.Info("programme stopped", "bleeps", len(p.bleeps.all()))
}
