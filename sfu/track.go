package sfu

import (
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

const (
	maxLayers = 3

	// Packets kept per incoming stream for NACKs: about two seconds of a 2.5 Mb/s video layer
	// (1.5 KB a slot, 768 KB a layer), and 1.3 s of 20 ms audio.
	videoCacheSize = 512
	audioCacheSize = 64

	// pliInterval spaces keyframe requests to the publisher, per layer.
	pliInterval = int64(500 * time.Millisecond)

	// A simulcast layer counts as sent for a few of its frame intervals after its last packet,
	// within [minLiveFor, layerLiveFor]: the browser stops sending its top layers when its
	// estimate drops (as it does on every new network path), and its subscribers then move
	// down within a quarter of a second rather than a second; a layer with frames far apart (a
	// still screen share) keeps the second.
	layerLiveFor  = int64(time.Second)
	minLiveFor    = int64(250 * time.Millisecond)
	liveFrameGaps = 6

	// Audio level: the smoothing weight of each packet (20 ms), the level above which a packet
	// is voiced (LiveKit's default, -35 dBov), and how long a level is trusted without packets.
	levelWeight    = 0.2
	activeLevel    = -35.0
	silenceLevel   = -127.0
	levelValidFor  = int64(time.Second)
	levelUnknownAt = 0

	// Speaking is read over a window, not from the smoothed level, which a syllable of 100 ms
	// never lifted above the threshold: voicedPackets voiced packets (100 ms of 20 ms packets)
	// within voicedWindow make a speaker, and speakingHold after the last such window the
	// speaker is silent again (about 1.5 s after the last syllable, with the room's tick).
	// Chromium's fake microphone beeps for 20 ms every 500 ms, which its audio processing
	// stretches over three or four voiced packets: two beeps make a speaker.
	voicedWindow  = int64(700 * time.Millisecond)
	voicedPackets = 5
	speakingHold  = int64(time.Second)
)

// forwarded header extensions, by their index in the per-track and per-DownTrack ID tables.
const (
	extAudioLevel = iota
	extVideoOrientation
	numFwdExt
)

// fwdExtURI names the header extension forwarded under index k.
func fwdExtURI(k int) string {
	switch k {
	case extAudioLevel:
		return uriAudioLevel
	case extVideoOrientation:
		return uriVideoOrientation
	}
	return ""
}

// upLayer is one incoming RTP stream of a published track: the only one without simulcast, one
// per rid with it.
type upLayer struct {
	rid    string
	index  int8
	ssrc   uint32
	lastAt atomic.Int64  // arrival of the newest packet, Unix nanoseconds
	bytes  atomic.Uint64 // received, for the layer's bitrate (the allocator's costs)
	cache  *packetCache
	pli    pliThrottle
	// pliHeld: a keyframe request the throttle held back waits for the interval's end
	// (requestKeyframe).
	pliHeld atomic.Bool

	// The newest sequence number read, for loss counting; only the layer's reader uses them.
	highSN uint16
	seenSN bool

	// Interarrival jitter (RFC 3550) times 16, in RTP timestamp units, for the connection
	// quality: jitter is published for the rater, the rest belongs to the reader.
	jitter      atomic.Uint32
	jitterWork  uint32
	jitterSeen  uint32 // packets folded in, to publish every few
	prevArrival int64
	prevTS      uint32

	// The interval between frames, smoothed, for how long the layer counts as live after its
	// last packet: published for the subscribers' readers, the rest belongs to the reader.
	frameGap     atomic.Int64
	frameGapWork int64
	frameAt      int64 // arrival of the newest frame's first packet
}

// observeFrame folds in the start of a new frame arriving at now.
func (l *upLayer) observeFrame(now int64) {
	if gap := now - l.frameAt; l.frameAt != 0 && gap > 0 && gap < layerLiveFor {
		if l.frameGapWork == 0 {
			l.frameGapWork = gap
		} else {
			l.frameGapWork += (gap - l.frameGapWork) / 8
		}
		l.frameGap.Store(l.frameGapWork)
	}
	l.frameAt = now
}

// live says whether the layer still counts as sent at now.
func (l *upLayer) live(now int64) bool {
	liveFor := layerLiveFor
	if g := l.frameGap.Load(); g > 0 {
		liveFor = min(max(liveFrameGaps*g, minLiveFor), layerLiveFor)
	}
	return now-l.lastAt.Load() <= liveFor
}

// inPacket is an incoming packet as the fan-out sees it. Each layer reader owns one and reuses
// it for every packet, so forwarding allocates nothing.
type inPacket struct {
	hdr      rtp.Header
	payload  []byte // padding removed
	ext      [numFwdExt][]byte
	arrival  int64
	layer    int8
	keyframe bool // starts a keyframe (always true for audio: any packet is a switching point)
	red      bool // payload is RFC 2198 redundant audio
}

// PublishedTrack is one track received from a publisher. It fans every packet out to the
// DownTracks of its subscribers.
type PublishedTrack struct {
	id, streamID string
	kind         webrtc.RTPCodecType
	codec        webrtc.RTPCodecParameters
	ck           codecKind
	redPT        uint8 // the publisher's RED payload type, 0 unless the track is audio/red
	opusPT       uint8 // the publisher's Opus payload type inside RED
	srcExt       [numFwdExt]uint8
	writeRTCP    func([]rtcp.Packet) error
	log          *slog.Logger
	fanout       *batchGroup // the sockets subscribers are reached through; nil: no batching

	layers     [maxLayers]atomic.Pointer[upLayer]
	downTracks atomic.Pointer[[]*DownTrack] // copy-on-write; replaced under mu
	muted      atomic.Bool
	unmutedAt  atomic.Int64 // Unix nanoseconds of the last unmute, 0 if never muted

	rating upRating // connection quality (quality.go)

	level   atomic.Uint64 // float64 bits of the smoothed level in dBov
	levelAt atomic.Int64
	// The last voiced packets (times and levels, a ring; the layer reader's only), and what
	// they said the last time they made a window of speech.
	voicedAt    [voicedPackets]int64
	voicedDBov  [voicedPackets]float64
	voicedNext  int
	speakingAt  atomic.Int64  // when the voiced packets last made a window of speech
	speechLevel atomic.Uint64 // float64 bits of their mean level then, in dBov

	stats trackCounters

	rates    layerRates   // measured per layer, for the allocators (allocator.go)
	wanted   wantedLayers // dynacast: what the publisher was told its subscribers receive
	onWanted func(maxLayer int8)

	mu      sync.Mutex
	readers int
	ended   bool
	done    chan struct{}
}

func newPublishedTrack(id, streamID string, codec webrtc.RTPCodecParameters, kind webrtc.RTPCodecType,
	exts []webrtc.RTPHeaderExtensionParameter, writeRTCP func([]rtcp.Packet) error, log *slog.Logger,
) *PublishedTrack {
	p := &PublishedTrack{
		id:        id,
		streamID:  streamID,
		kind:      kind,
		codec:     codec,
		ck:        codecKindOf(codec.MimeType),
		writeRTCP: writeRTCP,
		log:       log,
		done:      make(chan struct{}),
	}
	if p.ck == codecRED {
		p.redPT = uint8(codec.PayloadType)
		if pt, ok := redPrimaryPT(codec.SDPFmtpLine); ok {
			p.opusPT = pt
		}
	}
	p.srcExt = extensionIDs(exts)
	p.level.Store(math.Float64bits(silenceLevel))
	p.rating.score = maxLinkScore
	p.wanted.reported = maxLayers - 1
	empty := []*DownTrack{}
	p.downTracks.Store(&empty)
	return p
}

func extensionIDs(exts []webrtc.RTPHeaderExtensionParameter) [numFwdExt]uint8 {
	var ids [numFwdExt]uint8
	for _, e := range exts {
		for k := range ids {
			if e.URI == fwdExtURI(k) && e.ID > 0 && e.ID < 15 {
				ids[k] = uint8(e.ID) // one-byte header IDs only; Chrome uses no others here
			}
		}
	}
	return ids
}

// ID is the track id from the publisher's msid, which LiveKit clients send as the cid of their
// AddTrackRequest.
func (p *PublishedTrack) ID() string { return p.id }

// StreamID is the stream id from the publisher's msid.
func (p *PublishedTrack) StreamID() string { return p.streamID }

// Kind is audio or video.
func (p *PublishedTrack) Kind() webrtc.RTPCodecType { return p.kind }

// MimeType is the negotiated codec, "audio/red" for Opus with redundancy.
func (p *PublishedTrack) MimeType() string { return p.codec.MimeType }

// Layers lists the simulcast rids received so far, lowest quality first; it is empty for a track
// sent without simulcast.
func (p *PublishedTrack) Layers() []string {
	var rids []string
	for i := range p.layers {
		if l := p.layers[i].Load(); l != nil && l.rid != "" {
			rids = append(rids, l.rid)
		}
	}
	return rids
}

// LiveLayers lists the simulcast rids that are live (a packet within a few frames), lowest
// first: a publisher stops the layers it was told nobody receives (dynacast).
func (p *PublishedTrack) LiveLayers() []string {
	now := time.Now().UnixNano()
	var rids []string
	for i := range p.layers {
		if l := p.layers[i].Load(); l != nil && l.live(now) {
			rids = append(rids, l.rid)
		}
	}
	return rids
}

// SetMuted is the server-side mute: while muted nothing of the track is forwarded, and on
// unmute every subscriber restarts from a keyframe with continuous numbering.
func (p *PublishedTrack) SetMuted(muted bool) {
	if was := p.muted.Swap(muted); was && !muted {
		p.unmutedAt.Store(time.Now().UnixNano())
		for _, d := range *p.downTracks.Load() {
			d.resync()
		}
	}
}

// AudioLevel is the level of the RFC 6464 header extension in dBov (0 is the loudest, -127
// silence), and whether the track is speaking (voicedWindow). While it speaks, the level is
// that of its speech; otherwise the smoothed level. A track that sent no level for
// levelValidFor is silent.
func (p *PublishedTrack) AudioLevel() (dBov float64, active bool) {
	return p.audioLevelAt(time.Now().UnixNano())
}

func (p *PublishedTrack) audioLevelAt(now int64) (dBov float64, active bool) {
	at := p.levelAt.Load()
	if at == levelUnknownAt || now-at > levelValidFor {
		return silenceLevel, false
	}
	if s := p.speakingAt.Load(); s != 0 && now-s <= speakingHold {
		return math.Float64frombits(p.speechLevel.Load()), true
	}
	return math.Float64frombits(p.level.Load()), false
}

// Flowing reports whether a packet arrived on any layer within the last d: a camera that is
// not muted may still have stopped (its network cut, its browser frozen).
func (p *PublishedTrack) Flowing(d time.Duration) bool {
	now := time.Now().UnixNano()
	for i := range p.layers {
		if l := p.layers[i].Load(); l != nil && now-l.lastAt.Load() <= int64(d) {
			return true
		}
	}
	return false
}

// Stats counts the packets and bytes received, all layers together.
func (p *PublishedTrack) Stats() (packets, bytes uint64) {
	return p.stats.packets.Load(), p.stats.bytes.Load()
}

// Done is closed when the track ends: the publisher removed it or its transport closed.
func (p *PublishedTrack) Done() <-chan struct{} { return p.done }

// layerIndex orders simulcast rids by quality: LiveKit's q/h/f, and numbered rids.
func layerIndex(rid string) int8 {
	switch strings.ToLower(rid) {
	case "", "q", "0", "l":
		return 0
	case "h", "1", "m":
		return 1
	case "f", "2":
		return 2
	}
	return -1
}

// addLayer registers an incoming stream; ok is false when the track has ended or has no room.
func (p *PublishedTrack) addLayer(rid string, ssrc uint32) (*upLayer, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return nil, false
	}
	idx := layerIndex(rid)
	if idx < 0 || p.layers[idx].Load() != nil {
		idx = -1
		for i := range p.layers { // an unknown rid takes the first free slot
			if p.layers[i].Load() == nil {
				idx = int8(i)
				break
			}
		}
		if idx < 0 {
			return nil, false
		}
	}
	size := videoCacheSize
	if p.kind == webrtc.RTPCodecTypeAudio {
		size = audioCacheSize
	}
	l := &upLayer{rid: rid, index: idx, ssrc: ssrc, cache: newPacketCache(size)}
	// A layer counts as live from the moment it appears: its first packet is being read, and
	// subscribers must not settle on a lower layer just because it was read first.
	l.lastAt.Store(time.Now().UnixNano())
	p.layers[idx].Store(l)
	p.readers++
	return l, true
}

// readerDone is called when a layer's reader stops; the track ends with its last reader.
func (p *PublishedTrack) readerDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.readers--
	if p.readers <= 0 {
		p.endLocked()
	}
}

func (p *PublishedTrack) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLocked()
}

func (p *PublishedTrack) endLocked() {
	if !p.ended {
		p.ended = true
		close(p.done)
	}
}

func (p *PublishedTrack) addDownTrack(d *DownTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.downTracks.Load()
	next := make([]*DownTrack, len(old), len(old)+1)
	copy(next, old)
	next = append(next, d)
	p.downTracks.Store(&next)
}

func (p *PublishedTrack) removeDownTrack(d *DownTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.downTracks.Load()
	next := make([]*DownTrack, 0, len(old))
	for _, o := range old {
		if o != d {
			next = append(next, o)
		}
	}
	p.downTracks.Store(&next)
}

// layerAt returns the layer with the given index, or nil.
func (p *PublishedTrack) layerAt(i int8) *upLayer {
	if i < 0 || int(i) >= maxLayers {
		return nil
	}
	return p.layers[i].Load()
}

// bestLayer picks what a subscriber allowed up to layer ceiling should receive: the best live
// layer not above ceiling, else the lowest live layer above it; when no layer is live (a paused
// or muted camera), the same choice among the layers seen at all. -1 means no layer exists.
func (p *PublishedTrack) bestLayer(ceiling int8, now int64) int8 {
	for _, liveOnly := range [2]bool{true, false} {
		for i := min(ceiling, maxLayers-1); i >= 0; i-- {
			if p.usable(i, liveOnly, now) {
				return i
			}
		}
		for i := max(ceiling+1, 0); i < maxLayers; i++ {
			if p.usable(i, liveOnly, now) {
				return i
			}
		}
	}
	return -1
}

func (p *PublishedTrack) usable(i int8, liveOnly bool, now int64) bool {
	l := p.layers[i].Load()
	return l != nil && (!liveOnly || l.live(now))
}

// requestKeyframe asks the publisher for a keyframe on one layer, at most once per pliInterval.
// A request the interval holds back is sent when it ends, not dropped: the subscriber that asked
// may have lost its picture after the keyframe the earlier request brought, and would wait, its
// video frozen, until it asks again (a browser does so seconds later).
func (p *PublishedTrack) requestKeyframe(layer int8, now int64) {
	if p.kind != webrtc.RTPCodecTypeVideo || p.writeRTCP == nil {
		return
	}
	l := p.layerAt(layer)
	if l == nil {
		return
	}
	if !l.pli.allow(now, pliInterval) {
		if l.pliHeld.CompareAndSwap(false, true) {
			time.AfterFunc(time.Duration(l.pli.last.Load()+pliInterval-now), func() {
				l.pliHeld.Store(false)
				select {
				case <-p.done:
				default:
					p.requestKeyframe(layer, time.Now().UnixNano())
				}
			})
		}
		return
	}
	if err := p.writeRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: l.ssrc}}); err != nil {
		p.log.Debug("keyframe request to publisher failed", "track", p.id, "rid", l.rid, "err", err)
	}
}

// handle processes one packet read from layer l: parse once, cache, measure, fan out. raw stays
// valid until handle returns.
func (p *PublishedTrack) handle(l *upLayer, pkt *inPacket, raw []byte, now int64) {
	hl, err := pkt.hdr.Unmarshal(raw)
	if err != nil {
		p.stats.malformed.Add(1)
		return
	}
	end := len(raw)
	pkt.hdr.PaddingSize = 0
	if pkt.hdr.Padding {
		pad := int(raw[end-1])
		if pad == 0 || hl+pad > end {
			p.stats.malformed.Add(1)
			return
		}
		end -= pad
		pkt.hdr.PaddingSize = byte(pad)
	}
	pkt.payload = raw[hl:end]
	pkt.arrival = now
	pkt.layer = l.index

	p.stats.packets.Add(1)
	p.stats.bytes.Add(uint64(len(raw)))
	if p.countLoss(l, pkt.hdr.SequenceNumber) {
		if p.kind == webrtc.RTPCodecTypeVideo && pkt.hdr.Timestamp != l.prevTS {
			l.observeFrame(now)
		}
		l.observeJitter(pkt.hdr.Timestamp, now, p.codec.ClockRate)
	} else if int64(int32(l.prevTS-pkt.hdr.Timestamp)) > int64(p.codec.ClockRate)*int64(rtxDeadline)/int64(time.Second) {
		// A packet older than the newest by more than a jitter buffer waits: a publisher
		// answering, after a network cut, the NACKs for what it sent seconds ago. No
		// subscriber can play it, and hundreds of them sent at once fill a subscriber's
		// socket, which reads as congestion. (Counted late, by countLoss.)
		return
	}
	if l.cache.store(pkt.hdr.SequenceNumber, raw) {
		p.stats.duplicates.Add(1)
		return
	}
	if prev := l.lastAt.Swap(now); prev != 0 && now-prev > int64(streamGap) && p.kind == webrtc.RTPCodecTypeVideo && !keyframeStart(p.ck, pkt.payload) {
		// The stream comes back after a cut of the publisher's link (or an unmute): every
		// subscriber's decoder lost its reference, and the publisher, which saw nothing wrong
		// on its side, would only send a keyframe when the first subscriber asks.
		p.requestKeyframe(l.index, now)
	}
	l.bytes.Add(uint64(len(raw)))

	for k, id := range p.srcExt {
		pkt.ext[k] = nil
		if id != 0 {
			pkt.ext[k] = pkt.hdr.GetExtension(id)
		}
	}
	if lv := pkt.ext[extAudioLevel]; len(lv) > 0 && p.kind == webrtc.RTPCodecTypeAudio {
		p.observeLevel(lv[0]&0x7f, now)
	}
	pkt.red = p.redPT != 0 && pkt.hdr.PayloadType == p.redPT
	pkt.keyframe = p.kind == webrtc.RTPCodecTypeAudio || keyframeStart(p.ck, pkt.payload)

	if p.muted.Load() {
		return
	}
	downTracks := *p.downTracks.Load()
	if b := p.fanout; b != nil && len(downTracks) > 1 {
		// The copies for all subscribers leave in one system call when the loop ends.
		b.hold()
		for _, d := range downTracks {
			d.forward(pkt)
		}
		b.release()
		return
	}
	for _, d := range downTracks {
		d.forward(pkt)
	}
}

// streamGap: a video layer silent this long and then back starts again on a keyframe.
const streamGap = time.Second

// maxCountedGap is the largest sequence jump counted as loss; a larger one is a discontinuity
// (the publisher restarted its stream), not thousands of lost packets.
const maxCountedGap = 4096

// countLoss updates the upstream loss counters with a packet's sequence number, and says
// whether the packet is the newest so far. Only the layer's reader calls it.
func (p *PublishedTrack) countLoss(l *upLayer, sn uint16) (inOrder bool) {
	if !l.seenSN {
		l.highSN, l.seenSN = sn, true
		return true
	}
	switch d := sn - l.highSN; {
	case d == 0 || d >= 0x8000: // a duplicate, or older than the newest
		p.stats.late.Add(1)
		return false
	default:
		if d > 1 && d <= maxCountedGap {
			p.stats.lost.Add(uint64(d - 1))
		}
		l.highSN = sn
		return true
	}
}

// observeLevel folds one RFC 6464 level (0..127, in -dBov) into the moving average and the
// window of voiced packets. Only the layer reader calls it, so the read-modify-writes need no
// lock.
func (p *PublishedTrack) observeLevel(level uint8, now int64) {
	v := -float64(level)
	smoothed := v
	if p.levelAt.Load() != levelUnknownAt && now-p.levelAt.Load() <= levelValidFor {
		prev := math.Float64frombits(p.level.Load())
		smoothed = prev + levelWeight*(v-prev)
	}
	p.level.Store(math.Float64bits(smoothed))
	p.levelAt.Store(now)
	if v < activeLevel {
		return
	}
	p.voicedAt[p.voicedNext], p.voicedDBov[p.voicedNext] = now, v
	p.voicedNext = (p.voicedNext + 1) % voicedPackets
	if oldest := p.voicedAt[p.voicedNext]; oldest == 0 || now-oldest > voicedWindow {
		return
	}
	var sum float64
	for _, l := range p.voicedDBov {
		sum += l
	}
	p.speechLevel.Store(math.Float64bits(sum / voicedPackets))
	p.speakingAt.Store(now)
}

// readLayer forwards one incoming stream until it ends. It also drains the stream's RTCP so
// that pion's receiver-report interceptor sees the publisher's sender reports.
func (p *PublishedTrack) readLayer(l *upLayer, remote *webrtc.TrackRemote) {
	defer p.readerDone()
	buf := make([]byte, maxPacketSize)
	pkt := &inPacket{}
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		p.handle(l, pkt, buf[:n], time.Now().UnixNano())
	}
}

func drainRTCP(receiver *webrtc.RTPReceiver, rid string) {
	buf := make([]byte, maxPacketSize)
	for {
		if _, _, err := receiver.ReadSimulcast(buf, rid); err != nil {
			return
		}
	}
}
