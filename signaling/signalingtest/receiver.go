package signalingtest

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/ingeco/hemicycle/test/media"
)

// Packet is one RTP packet a subscriber received.
type Packet struct {
	At    time.Time
	Track string // the publication's name
	Kind  webrtc.RTPCodecType
	*rtp.Packet
}

// Receiver keeps what a subscriber really gets: every packet, per track name, with its
// arrival time; the subscriptions; and which tracks it sees muted.
type Receiver struct {
	mu      sync.Mutex
	packets []Packet
	subs    []subscription
	muted   map[string]bool
	pubs    map[string]*lksdk.RemoteTrackPublication // the last subscribed, per track name
}

// subscription is one track as the subscriber received it: a full reconnect makes new ones.
type subscription struct {
	at          time.Time
	firstPacket time.Time
}

// NewReceiver returns a receiver and the callback to join with.
func NewReceiver() (*Receiver, *lksdk.RoomCallback) {
	rc := &Receiver{muted: map[string]bool{}, pubs: map[string]*lksdk.RemoteTrackPublication{}}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		rc.mu.Lock()
		rc.pubs[pub.Name()] = pub
		rc.subs = append(rc.subs, subscription{at: time.Now()})
		idx := len(rc.subs) - 1
		rc.mu.Unlock()
		go rc.read(track, pub.Name(), idx)
	}
	cb.OnTrackMuted = func(pub lksdk.TrackPublication, _ lksdk.Participant) { rc.setMuted(pub.Name(), true) }
	cb.OnTrackUnmuted = func(pub lksdk.TrackPublication, _ lksdk.Participant) { rc.setMuted(pub.Name(), false) }
	return rc, cb
}

func (rc *Receiver) read(track *webrtc.TrackRemote, name string, idx int) {
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		rc.mu.Lock()
		rc.packets = append(rc.packets, Packet{At: now, Track: name, Kind: track.Kind(), Packet: pkt})
		if rc.subs[idx].firstPacket.IsZero() {
			rc.subs[idx].firstPacket = now
		}
		rc.mu.Unlock()
	}
}

func (rc *Receiver) setMuted(name string, m bool) {
	rc.mu.Lock()
	rc.muted[name] = m
	rc.mu.Unlock()
}

// Publication is the subscribed publication of track, to ask the server for a layer of it;
// nil before the subscription.
func (rc *Receiver) Publication(track string) *lksdk.RemoteTrackPublication {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.pubs[track]
}

// Muted says whether the subscriber was last told that track is muted.
func (rc *Receiver) Muted(track string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.muted[track]
}

// Packets returns the packets received on track so far, in arrival order.
func (rc *Receiver) Packets(track string) []Packet {
	return rc.where(func(p Packet) bool { return p.Track == track })
}

// Count is how many packets arrived on track.
func (rc *Receiver) Count(track string) int { return len(rc.Packets(track)) }

// of returns the packets of one kind, audio or video.
func (rc *Receiver) of(kind webrtc.RTPCodecType) []Packet {
	return rc.where(func(p Packet) bool { return p.Kind == kind })
}

func (rc *Receiver) where(keep func(Packet) bool) []Packet {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []Packet
	for _, p := range rc.packets {
		if keep(p) {
			out = append(out, p)
		}
	}
	return out
}

// Audio and Video count the packets of each kind, every track together.
func (rc *Receiver) Audio() int { return len(rc.of(webrtc.RTPCodecTypeAudio)) }
func (rc *Receiver) Video() int { return len(rc.of(webrtc.RTPCodecTypeVideo)) }

// Matched counts the audio payloads received that from sent, byte for byte.
func (rc *Receiver) Matched(from *Publisher) int { n, _ := rc.opus(from); return n }

// Foreign counts the audio payloads received that from never sent.
func (rc *Receiver) Foreign(from *Publisher) int { _, n := rc.opus(from); return n }

func (rc *Receiver) opus(from *Publisher) (matched, foreign int) {
	for _, p := range rc.of(webrtc.RTPCodecTypeAudio) {
		switch {
		case len(p.Payload) == 0:
		case from.Sent(p.Payload):
			matched++
		default:
			foreign++
		}
	}
	return matched, foreign
}

// Keyframes counts the VP8 keyframes received.
func (rc *Receiver) Keyframes() int { n, _ := rc.keyframes(); return n }

// KeyframeWidth is the width of the last VP8 keyframe received, 0 before the first.
func (rc *Receiver) KeyframeWidth() int { _, w := rc.keyframes(); return w }

func (rc *Receiver) keyframes() (n, lastWidth int) {
	for _, p := range rc.of(webrtc.RTPCodecTypeVideo) {
		var vp8 codecs.VP8Packet
		// A keyframe starts a partition (S), in the first one (PID 0), with a frame tag whose
		// bit 0 is 0 (RFC 6386 section 9.1).
		if _, err := vp8.Unmarshal(p.Payload); err == nil && vp8.S == 1 && vp8.PID == 0 && len(vp8.Payload) > 0 && vp8.Payload[0]&1 == 0 {
			n++
			lastWidth = media.KeyframeWidth(vp8.Payload)
		}
	}
	return n, lastWidth
}

// MediaBackAfter is when the first packet arrived on a track subscribed after t0, if any.
func (rc *Receiver) MediaBackAfter(t0 time.Time) (time.Time, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var first time.Time
	for _, s := range rc.subs {
		if s.at.After(t0) && !s.firstPacket.IsZero() && (first.IsZero() || s.firstPacket.Before(first)) {
			first = s.firstPacket
		}
	}
	return first, !first.IsZero()
}

// LongestAudioGap is the longest time without audio between from and to, and when it began.
func (rc *Receiver) LongestAudioGap(from, to time.Time) (time.Duration, time.Time) {
	var times []time.Time
	for _, p := range rc.of(webrtc.RTPCodecTypeAudio) {
		times = append(times, p.At)
	}
	slices.SortFunc(times, time.Time.Compare)
	prev := from
	var longest time.Duration
	var at time.Time
	for _, ts := range append(times, to) {
		if ts.Before(from) {
			continue
		}
		if ts.After(to) {
			ts = to
		}
		if g := ts.Sub(prev); g > longest {
			longest, at = g, prev
		}
		prev = ts
		if ts.Equal(to) {
			break
		}
	}
	return longest, at
}

// Counter counts the RTP packets a subscriber receives, per kind, and keeps none of them: for
// crowds of viewers and long runs, where a Receiver's copies would weigh.
type Counter struct{ audio, video atomic.Int64 }

// NewCounter returns a counter and the callback to join with.
func NewCounter() (*Counter, *lksdk.RoomCallback) {
	c := &Counter{}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		n := &c.audio
		if track.Kind() == webrtc.RTPCodecTypeVideo {
			n = &c.video
		}
		go func() {
			for {
				if _, _, err := track.ReadRTP(); err != nil {
					return
				}
				n.Add(1)
			}
		}()
	}
	return c, cb
}

// Audio and Video are how many packets of each kind arrived, every track together.
func (c *Counter) Audio() int64 { return c.audio.Load() }
func (c *Counter) Video() int64 { return c.video.Load() }
