package broadcast

import (
	"sync"

	"github.com/pion/rtp"

	"github.com/ingeco/hemicycle/sfu"
)

// videoOutput is one video track of the programme (the speaker, the interpreter). At any time
// one feed is on air; a feed asked for takes over at its first keyframe, so the switch is clean,
// and the munger keeps the output's numbering continuous across it. Packets are held for the
// programme's delay, already renumbered, then written to the local track.
type videoOutput struct {
	name   string
	prog   *Programme
	track  *sfu.PublishedTrack
	writer *sfu.LocalWriter
	pt     uint8
	still  [][]byte // the keyframes shown without a camera: the slate, or the blank

	mu      sync.Mutex
	current *videoFeed // on air
	pending *videoFeed // asked for, waiting for its first keyframe
	q       delayQueue
	m       sfu.Munger
	hdr     rtp.Header
}

// videoFeed is one source of a video output: a published camera read through a sink, or the
// slate (track nil).
type videoFeed struct {
	out   *videoOutput
	track Source
	sink  sfu.Sink // set once the sink exists; nil for the slate
	slate slateState
}

// WriteRTP is the sink's delivery, on the source's read path.
func (f *videoFeed) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	f.out.ingest(f, h.SequenceNumber, h.Timestamp, h.Marker, payload)
	return len(payload), nil
}

// source reports the track on air (nil for the slate or nothing) and the one asked for.
func (o *videoOutput) source() (current, pending *videoFeed) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.current, o.pending
}

// ingest takes a packet of feed f at the current programme time.
func (o *videoOutput) ingest(f *videoFeed, sn uint16, ts uint32, marker bool, payload []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.prog.clock()
	if f == o.pending {
		// A sink starts at a keyframe, and the slate sends nothing else: this packet begins
		// a picture the viewer can decode, so the new source goes on air here.
		if o.current != nil && o.current != f {
			o.prog.retire(o.current.sink)
		}
		o.current, o.pending = f, nil
		o.m.Rebase(sn, ts, now)
	}
	if f != o.current {
		return
	}
	osn, ots, ok := o.m.Translate(sn, ts)
	if !ok {
		return // from before the switch: its number may already be taken
	}
	o.m.Sent(sn, osn, ots, now)
	o.q.push(now, osn, ots, marker, payload)
}

// release writes the packets that have waited long enough: those that arrived at or before
// cutoff (programme time).
func (o *videoOutput) release(cutoff int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		h := o.q.peek()
		if h == nil || h.at > cutoff {
			return
		}
		o.hdr = rtp.Header{Version: 2, PayloadType: o.pt, SequenceNumber: h.sn, Timestamp: h.ts, Marker: h.marker}
		if err := o.writer.WriteRTP(&o.hdr, h.data); err != nil {
			o.q.pop()
			return
		}
		o.q.pop()
	}
}

// want puts a source on air: track, or the slate when track is nil and slate is set, or
// nothing. It returns the feed to open a sink for (nil when nothing changes or for the slate)
// and the feeds to retire.
func (o *videoOutput) want(track Source, slate bool) (open *videoFeed, retired []*videoFeed) {
	o.mu.Lock()
	defer o.mu.Unlock()
	same := func(f *videoFeed) bool {
		if f == nil {
			return track == nil && !slate
		}
		return f.track == track
	}
	if o.pending != nil && same(o.pending) {
		return nil, nil
	}
	if o.pending == nil && same(o.current) {
		return nil, nil
	}
	if o.pending != nil {
		retired = append(retired, o.pending)
		o.pending = nil
	}
	if same(o.current) {
		return nil, retired // back to what is on air: drop the switch under way
	}
	if track == nil && !slate {
		if o.current != nil {
			retired = append(retired, o.current)
			o.current = nil
		}
		return nil, retired
	}
	f := &videoFeed{out: o, track: track}
	o.pending = f
	if track == nil {
		return nil, retired // the slate needs no sink: its next frame switches
	}
	return f, retired
}

// attach records the sink opened for f; it reports false when f was dropped meanwhile, and
// the caller then closes the sink.
func (o *videoOutput) attach(f *videoFeed, s sfu.Sink) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	f.sink = s
	return f == o.pending || f == o.current
}

// keyframeSink is the sink of the feed on air, to ask its publisher for a keyframe.
func (o *videoOutput) keyframeSink() sfu.Sink {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, f := range []*videoFeed{o.pending, o.current} {
		if f != nil && f.sink != nil {
			return f.sink
		}
	}
	return nil
}

// slateFeed is the feed showing the slate now or about to, or nil.
func (o *videoOutput) slateFeed() *videoFeed {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending != nil {
		if o.pending.track == nil {
			return o.pending
		}
		// A camera asked for but without its keyframe yet: keep the slate going if it is on.
	}
	if o.current != nil && o.current.track == nil {
		return o.current
	}
	return nil
}
