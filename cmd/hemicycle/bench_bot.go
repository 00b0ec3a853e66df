package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
	protologger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/ingeco/hemicycle/cmd/hemicycle/clips"
)

// bot is one synthetic participant: a LiveKit Go SDK room connection that publishes looped
// pre-encoded media and counts, without decoding, what it receives.
type bot struct {
	spec      botSpec
	run       *benchRun
	room      *lksdk.Room
	joinStart atomic.Int64 // Unix nanoseconds, just before the WebSocket is dialled
	gotMedia  atomic.Bool
	joined    atomic.Bool // Join returned: subscription requests may be sent
	requested sync.Map    // track SID -> struct{}: subscriptions already asked for
}

// join connects the bot, asks for the tracks it wants and starts its media. On error the
// connection, if any, is closed again.
func (b *bot) join(ctx context.Context) error {
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		b.run.startReader(b, track)
	}
	cb.OnTrackPublished = func(pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		// Tracks announced during the join are handled once it returns; later ones here.
		if b.joined.Load() {
			b.maybeSubscribe(pub, rp)
		}
	}
	room := lksdk.NewRoom(cb)
	opts := []lksdk.ConnectOption{
		lksdk.WithAutoSubscribe(b.spec.autoSubscribe),
		// The SDK gives up on the peer connections after 5 s by default; a server slowed down
		// by a storm would then turn slow joins into failures, and the join-time tail into
		// nothing. The whole join stays bounded by joinTimeout.
		lksdk.WithConnectTimeout(joinTimeout / 2),
	}
	if !b.run.cfg.Verbose {
		opts = append(opts, lksdk.WithLogger(protologger.GetDiscardLogger()))
	}
	info := lksdk.ConnectInfo{
		APIKey: b.run.cfg.Key, APISecret: b.run.cfg.Secret,
		RoomName: b.run.room, ParticipantIdentity: b.spec.identity, ParticipantName: b.spec.identity,
	}
	start := time.Now()
	b.joinStart.Store(start.UnixNano())
	if err := room.JoinWithContext(ctx, b.run.cfg.URL, info, opts...); err != nil {
		room.Disconnect() // closes whatever the failed join left open
		return fmt.Errorf("join as %s: %w", b.spec.identity, err)
	}
	b.room = room
	b.run.addBot(b)
	if b.spec.timed {
		b.run.connectTimes.add(time.Since(start))
	}
	b.joined.Store(true)
	for _, rp := range room.GetRemoteParticipants() {
		for _, tp := range rp.TrackPublications() {
			if pub, ok := tp.(*lksdk.RemoteTrackPublication); ok {
				b.maybeSubscribe(pub, rp)
			}
		}
	}
	return b.publish()
}

func (b *bot) maybeSubscribe(pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
	if !b.spec.wants(rp.Identity(), string(pub.Kind())) {
		return
	}
	if _, dup := b.requested.LoadOrStore(pub.SID(), struct{}{}); dup {
		return
	}
	if err := pub.SetSubscribed(true); err != nil {
		b.run.noteError(fmt.Errorf("%s subscribes to %s's %s: %w", b.spec.identity, rp.Identity(), pub.Kind(), err))
	}
}

// firstMedia records the join time at the bot's first media packet.
func (b *bot) firstMedia(at time.Time) {
	if b.spec.timed && b.gotMedia.CompareAndSwap(false, true) {
		b.run.joinTimes.add(at.Sub(time.Unix(0, b.joinStart.Load())))
	}
}

func (b *bot) publish() error {
	if b.spec.audio {
		track, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
		if err != nil {
			return fmt.Errorf("%s: audio track: %w", b.spec.identity, err)
		}
		if _, err := b.room.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{
			Name: "microphone", Source: livekit.TrackSource_MICROPHONE,
		}); err != nil {
			return fmt.Errorf("%s publishes audio: %w", b.spec.identity, err)
		}
		b.run.startWriter(track, b.run.opus, nil)
	}
	if b.spec.video {
		// The SFU asks for a keyframe (PLI) when a subscriber starts; a real encoder makes one
		// at once, and so does the looped clip by skipping to its next keyframe.
		keyframeWanted := new(atomic.Bool)
		track, err := lksdk.NewLocalTrack(
			webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
			lksdk.WithRTCPHandler(func(p rtcp.Packet) {
				switch p.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					keyframeWanted.Store(true)
				}
			}))
		if err != nil {
			return fmt.Errorf("%s: video track: %w", b.spec.identity, err)
		}
		if _, err := b.room.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{
			Name: "camera", Source: livekit.TrackSource_CAMERA, VideoWidth: 320, VideoHeight: 240,
		}); err != nil {
			return fmt.Errorf("%s publishes video: %w", b.spec.identity, err)
		}
		b.run.startWriter(track, b.run.vp8, keyframeWanted)
	}
	return nil
}

// readTrack counts one received track until its peer connection closes. Payloads are never
// decoded: the bench measures the server, not a decoder.
func (r *benchRun) readTrack(b *bot, track *webrtc.TrackRemote, c *streamCounter) {
	buf := make([]byte, 4096)
	for {
		n, _, err := track.Read(buf)
		if errors.Is(err, io.ErrShortBuffer) {
			r.malformed.Add(1)
			continue
		}
		if err != nil {
			return // the connection closed
		}
		now := time.Now()
		b.firstMedia(now)
		seq, _, payload, err := parseRTP(buf[:n])
		if err != nil {
			r.malformed.Add(1)
			continue
		}
		c.observe(seq, n)
		// The stamp ends each frame, so it is in the frame's last packet. The marker bit would
		// say which packet that is, but servers may rewrite it on audio (LiveKit keeps it for
		// the start of a talkspurt only), so every packet is checked for the stamp's magic.
		if r.measuring.Load() {
			if sent, ok := readStamp(payload); ok {
				r.recordDelay(now.Sub(sent))
			}
		}
	}
}

// writeTrack sends frames in a loop at their own pace until the run stops its media.
func (r *benchRun) writeTrack(track *lksdk.LocalTrack, frames []clips.Frame, keyframeWanted *atomic.Bool) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	next := time.Now()
	var lastJump time.Time
	for i := 0; ; {
		select {
		case <-r.mediaCtx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		if keyframeWanted != nil && keyframeWanted.Load() {
			// At most a few jumps per second, so that a burst of joins does not turn the
			// stream into keyframes only.
			if !frames[i].Keyframe && now.Sub(lastJump) >= keyframeJumpInterval {
				i = nextKeyframe(frames, i)
				lastJump = now
			}
			if frames[i].Keyframe {
				keyframeWanted.Store(false)
			}
		}
		f := frames[i]
		// Before bind (the publisher PC not yet connected) WriteSample drops the sample.
		if err := track.WriteSample(pionmedia.Sample{Data: appendStamp(f.Data, now), Duration: f.Duration}, nil); err != nil {
			r.sendErrors.Add(1)
		}
		i = (i + 1) % len(frames)
		next = next.Add(f.Duration)
		if time.Until(next) < -time.Second {
			next = time.Now() // starved of CPU: resume the pace rather than send a burst
		}
		timer.Reset(time.Until(next))
	}
}

const keyframeJumpInterval = 250 * time.Millisecond

// nextKeyframe returns the index of the first keyframe after i, looping; i if there is none.
func nextKeyframe(frames []clips.Frame, i int) int {
	for j := 1; j <= len(frames); j++ {
		if k := (i + j) % len(frames); frames[k].Keyframe {
			return k
		}
	}
	return i
}
