package sfu

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Server-side media: tracks the server produces itself (the public programme) and server-side
// readers of published tracks (the programme's inputs, recorders). Both reuse the forwarding
// path of remote tracks, so that subscribers of a server-fed track get the same SN/TS rewriting,
// NACK answers and keyframe gating as any other.

// ErrLocalTrackClosed is returned by writes after LocalWriter.Close.
var ErrLocalTrackClosed = errors.New("sfu: the local track is closed")

// LocalWriter feeds packets into a track published by the server.
type LocalWriter struct {
	track *PublishedTrack
	layer *upLayer

	mu     sync.Mutex
	closed bool
	pkt    inPacket
	buf    [maxPacketSize]byte
}

// NewLocalTrack creates a track whose packets come from the server: every packet written to the
// returned LocalWriter fans out to the track's DownTracks and sinks exactly as a packet read from
// a publisher would. onKeyframe, if not nil, is called (at most every pliInterval) when a
// subscriber needs a keyframe; the producer then asks its own source for one. The codec's
// payload type is the one the packets written carry.
func (e *Engine) NewLocalTrack(codec webrtc.RTPCodecParameters, id, streamID string, onKeyframe func()) (*PublishedTrack, *LocalWriter, error) {
	kind := webrtc.RTPCodecTypeVideo
	switch {
	case strings.HasPrefix(strings.ToLower(codec.MimeType), "audio/"):
		kind = webrtc.RTPCodecTypeAudio
	case !strings.HasPrefix(strings.ToLower(codec.MimeType), "video/"):
		return nil, nil, fmt.Errorf("sfu: local track %q: mime type %q is neither audio/* nor video/*", id, codec.MimeType)
	}
	var writeRTCP func([]rtcp.Packet) error
	if onKeyframe != nil {
		writeRTCP = func(pkts []rtcp.Packet) error {
			for _, p := range pkts {
				switch p.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					onKeyframe()
					return nil
				}
			}
			return nil
		}
	}
	log := slog.New(slog.DiscardHandler)
	if e != nil && e.log != nil {
		log = e.log
	}
	p := newPublishedTrack(id, streamID, codec, kind, nil, writeRTCP, log.With("track", id, "local", true))
	var ssrc [4]byte
	_, _ = rand.Read(ssrc[:]) // crypto/rand never fails on Linux
	l, ok := p.addLayer("", binary.BigEndian.Uint32(ssrc[:]))
	if !ok {
		return nil, nil, fmt.Errorf("sfu: local track %q: no layer", id) // cannot happen on a new track
	}
	return p, &LocalWriter{track: p, layer: l}, nil
}

// WriteRTP sends one packet (header and payload, no padding) into the track. The header is
// copied; the caller may reuse both.
func (w *LocalWriter) WriteRTP(h *rtp.Header, payload []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrLocalTrackClosed
	}
	hdr := *h
	hdr.Padding, hdr.PaddingSize = false, 0
	hn := hdr.MarshalSize()
	if hn+len(payload) > len(w.buf) {
		return fmt.Errorf("sfu: local track %s: packet of %d bytes exceeds %d", w.track.id, hn+len(payload), len(w.buf))
	}
	n, err := hdr.MarshalTo(w.buf[:])
	if err != nil {
		return fmt.Errorf("sfu: local track %s: marshal header: %w", w.track.id, err)
	}
	n += copy(w.buf[n:], payload)
	w.track.handle(w.layer, &w.pkt, w.buf[:n], time.Now().UnixNano())
	return nil
}

// SSRC is the source identifier of the track's only stream.
func (w *LocalWriter) SSRC() uint32 { return w.layer.ssrc }

// Close ends the track: Done is closed and subscribers drop it.
func (w *LocalWriter) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	w.track.readerDone()
}

// SinkWriter receives the packets of a published track on the server. WriteRTP is called on the
// track's read path, one packet at a time, with the header and payload valid only during the
// call: copy what must be kept, and never block.
type SinkWriter interface {
	WriteRTP(h *rtp.Header, payload []byte) (int, error)
}

// Sink is a server-side reader of a published track, from AddSink. It is a DownTrack whose
// writer is not a pion sender, so it picks its simulcast layer, waits for keyframes and numbers
// packets continuously exactly as a subscriber would. Audio published with RED reaches a sink
// as plain Opus (the primary encoding). It is an interface so that a reader of tracks (the
// programme) can be fed in its tests without a published track.
type Sink interface {
	// RequestKeyframe asks the publisher for a keyframe of the layer the sink receives.
	RequestKeyframe()
	// Close stops the delivery; no WriteRTP call is in progress or starts once it returns.
	Close()
}

type sink struct {
	d *DownTrack
}

// sinkWriter adapts a SinkWriter to the TrackLocalWriter the DownTrack writes to.
type sinkWriter struct{ w SinkWriter }

// WriteRTP reports a non-zero size whatever the sink returns: a DownTrack takes 0 for a
// connection not ready yet, and a sink is always ready.
func (s sinkWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	n, err := s.w.WriteRTP(h, payload)
	if err != nil {
		return n, err
	}
	return max(n, 1), nil
}

func (s sinkWriter) Write([]byte) (int, error) {
	return 0, errors.New("sfu: a sink takes parsed packets only")
}

// AddSink starts delivering the track's packets to w, from the next keyframe (any packet for
// audio), up to the given simulcast quality. Close the sink to stop.
func (p *PublishedTrack) AddSink(w SinkWriter, q Quality) Sink {
	d := newDownTrack(p, nil, p.id, p.streamID)
	d.mu.Lock()
	d.writer = sinkWriter{w}
	d.pt = uint8(p.codec.PayloadType)
	d.ssrc = p.layerSSRC()
	if p.ck == codecRED {
		d.opusPT = p.opusPT
		if d.opusPT == 0 {
			d.opusPT = 111
		}
		d.pt = d.opusPT
	}
	d.maxLayer = q.layer()
	d.target = max(p.bestLayer(d.maxLayer, time.Now().UnixNano()), 0)
	d.mu.Unlock()
	p.addDownTrack(d)
	d.resync()
	return &sink{d: d}
}

// layerSSRC is the SSRC of the lowest layer, which a sink reports as its own.
func (p *PublishedTrack) layerSSRC() uint32 {
	for i := range p.layers {
		if l := p.layers[i].Load(); l != nil {
			return l.ssrc
		}
	}
	return 0
}

func (s *sink) RequestKeyframe() { s.d.keyframeRequested() }

func (s *sink) Close() {
	s.d.track.removeDownTrack(s.d)
	// A packet being forwarded holds the DownTrack's lock; taking it waits for that call.
	s.d.mu.Lock()
	s.d.writer = nil
	s.d.mu.Unlock()
}
