package broadcast

import (
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/ingeco/hemicycle/auth"
	bc "github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/test/media"
)

// TestViewerGetsTheDelayedProgrammeAndTheBleep is the main scenario with the Go SDK as
// the viewer: the chair speaks (a 440 Hz tone) on camera, a member is in the room, a viewer
// watches with a viewer token. The viewer must receive the chair's audio and video no earlier
// than the delay after they were sent; a bleep marked by the chair must reach the viewer as the
// 1 kHz tone over exactly the marked interval, with none of the chair's packets of that
// interval; the member must never see the programme or the viewer.
func TestViewerGetsTheDelayedProgrammeAndTheBleep(t *testing.T) {
	media.NeedFFmpeg(t)
	const delay = 2 * time.Second
	const room = "council"
	s := startServer(t, signaling.ProgrammeConfig{Broadcast: bc.Config{Delay: delay}})

	chair := s.Join(t, room, "chair", auth.RoleChair, 0, nil)
	pub := publish(t, chair, true)

	var memberSawProgramme atomic.Int32
	memberCB := lksdk.NewRoomCallback()
	memberCB.OnTrackSubscribed = func(_ *webrtc.TrackRemote, p *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		if strings.HasPrefix(p.Name(), "programme") {
			memberSawProgramme.Add(1)
		}
	}
	member := s.Join(t, room, "member", auth.RoleMember, 3, memberCB)

	v := watch(t, s, room)
	isChairs := func(g signalingtest.Packet) bool {
		_, ok := pub.SentBefore(g.Payload, g.At)
		return ok
	}
	signalingtest.Eventually(t, "the viewer hears the chair", 20*time.Second, func() bool {
		n := 0
		for _, g := range v.Packets(bc.TrackAudioPrefix + "0") {
			if isChairs(g) {
				n++
			}
		}
		return n >= 25
	})

	// The chair bleeps about a second of speech.
	chairToken := s.Token(t, room, "chair", auth.RoleChair, 0)
	var on, off struct {
		Bleep   bc.Bleep `json:"bleep"`
		Changed bool     `json:"changed"`
	}
	if code := post(t, s, "/api/rooms/"+room+"/bleep", chairToken, map[string]bool{"on": true}, &on); code != 200 || !on.Changed {
		t.Fatalf("bleep on: status %d, %+v", code, on)
	}
	time.Sleep(time.Second)
	if code := post(t, s, "/api/rooms/"+room+"/bleep", chairToken, map[string]bool{"on": false}, &off); code != 200 || !off.Changed {
		t.Fatalf("bleep off: status %d, %+v", code, off)
	}
	// A member may not bleep.
	if code := post(t, s, "/api/rooms/"+room+"/bleep", s.Token(t, room, "member", auth.RoleMember, 3), map[string]bool{"on": true}, nil); code != 403 {
		t.Errorf("a member's bleep answered %d, want 403", code)
	}
	from, to := on.Bleep.From, off.Bleep.To
	signalingtest.Eventually(t, "the bleep has been broadcast", delay+10*time.Second, func() bool {
		pk := v.Packets(bc.TrackAudioPrefix + "0")
		return len(pk) > 0 && pk[len(pk)-1].At.After(to.Add(delay+time.Second))
	})
	audio := v.Packets(bc.TrackAudioPrefix + "0")
	video := v.Packets(bc.TrackVideo)

	// 1. The delay, on every chair packet the viewer got. Each packet is matched with the
	// latest sending of its payload up to 100 ms less than the delay before it came: early
	// enough to see a packet out before its time, late enough not to take the clip's previous
	// loop, 4 s before.
	const earlyWindow = 100 * time.Millisecond
	var lates []time.Duration
	for _, g := range audio {
		if sent, ok := pub.SentBefore(g.Payload, g.At.Add(-delay+earlyWindow)); ok {
			lates = append(lates, g.At.Sub(sent))
		}
	}
	slices.Sort(lates)
	if len(lates) < 100 {
		t.Fatalf("only %d chair packets reached the viewer", len(lates))
	}
	t.Logf("audio delay over %d packets (configured %s): min %s, median %s, p95 %s, max %s",
		len(lates), delay, lates[0], lates[len(lates)/2], lates[len(lates)*95/100], lates[len(lates)-1])
	if lates[0] < delay {
		t.Errorf("a chair packet reached the viewer %s after it was sent, before the %s delay", lates[0], delay)
	}
	if lates[len(lates)-1] > delay+5*time.Second { // a liveness bound: stalls of a loaded machine add to it
		t.Errorf("a chair packet took %s, far beyond the %s delay", lates[len(lates)-1], delay)
	}

	// 2. The bleep, packet by packet: one run of tone frames about the length of the bleep,
	// where the bleep falls in the delayed stream, and none of the chair's packets that reached
	// the server inside it. A packet reached the server after it was sent and, since the
	// programme holds every packet at least the delay, no later than it was received minus the
	// delay: a packet sent within the bleep and received less than the delay after its end
	// certainly arrived inside it.
	tones, err := bc.ToneFrames()
	if err != nil {
		t.Fatal(err)
	}
	isTone := func(g signalingtest.Packet) bool {
		return slices.ContainsFunc(tones, func(f []byte) bool { return string(f) == string(g.Payload) })
	}
	first, last := -1, -1
	for i, g := range audio {
		if isTone(g) {
			if first < 0 {
				first = i
			}
			last = i
		}
		if sent, ok := pub.SentBefore(g.Payload, g.At); ok && !sent.Before(from) && g.At.Add(-delay).Before(to) {
			t.Errorf("the viewer got a chair packet that reached the server inside the bleep (sent %s into it)", sent.Sub(from))
		}
	}
	if first < 0 {
		t.Fatal("the viewer never got the tone")
	}
	for i := first; i <= last; i++ {
		if !isTone(audio[i]) {
			t.Fatalf("packet %d inside the tone run is not the tone", i)
		}
	}
	frames := last - first + 1
	toneLength := time.Duration(frames) * 20 * time.Millisecond
	// The tone covers what arrived during the bleep, plus one frame (the next packet may carry
	// the last bleeped frame as FEC); network jitter stretches or squeezes that a little.
	if d := toneLength - to.Sub(from); d < -300*time.Millisecond || d > 300*time.Millisecond {
		t.Errorf("%s of tone for a %s bleep", toneLength, to.Sub(from))
	}
	if early := from.Add(delay).Sub(audio[first].At); early > 25*time.Millisecond {
		t.Errorf("the tone started %s before the bleep was due on air", early)
	}
	t.Logf("bleep of %s: %d tone frames, first heard %s after the mark (delay %s)", to.Sub(from), frames, audio[first].At.Sub(from), delay)

	// 3. The same, by ear: decode what the viewer got with ffmpeg and measure the pitch per
	// 100 ms. The 1 kHz run must match the tone frames; elsewhere the chair's 440 Hz (or
	// silence, where jitter left a gap), never 1 kHz.
	samples := decodeOpus(t, audio)
	const win = 4800
	cls := media.Pitches(samples, win)
	toneStart := (first * 960) / win // the output is one frame per 20 ms, numbered continuously
	toneEnd := ((last + 1) * 960) / win
	chairFrom := 0
	for i, g := range audio {
		if isChairs(g) {
			chairFrom = (i*960)/win + 1
			break
		}
	}
	var wrong []int
	heard440 := 0
	for i, c := range cls {
		switch {
		case i < chairFrom || (i >= toneStart-1 && i <= toneStart+1) || (i >= toneEnd-1 && i <= toneEnd+1):
			// Before the chair, or at an edge (the decoder's pre-skip shifts samples by less
			// than a window).
		case i > toneStart && i < toneEnd:
			if c != 1000 {
				wrong = append(wrong, i)
			}
		case i < len(cls)-1:
			if c == 440 {
				heard440++
			} else if c != 0 {
				wrong = append(wrong, i)
			}
		}
	}
	if len(wrong) > 0 || heard440 < 20 {
		t.Errorf("decoded pitch wrong in 100 ms windows %v (%d windows of 440 Hz); heard: %s", wrong, heard440, runs(cls))
	}
	t.Logf("decoded pitch per 100 ms: %s", runs(cls))

	// 4. Video: the chair's camera, not the slate, with keyframes, delayed too.
	var keyframes, chairFrames int
	for _, g := range video {
		var vp8 codecs.VP8Packet
		if _, err := vp8.Unmarshal(g.Payload); err != nil || vp8.S != 1 || vp8.PID != 0 || len(vp8.Payload) < 10 {
			continue
		}
		if vp8.Payload[0]&1 == 0 {
			keyframes++
		}
		if slices.ContainsFunc(pub.VP8, func(f media.Frame) bool { return len(f.Data) >= 10 && string(f.Data[:10]) == string(vp8.Payload[:10]) }) {
			chairFrames++
		}
	}
	if keyframes == 0 || chairFrames < 30 {
		t.Errorf("viewer got %d keyframes and %d frames of the chair's camera", keyframes, chairFrames)
	}

	// 5. The member saw neither the programme nor the viewer.
	if n := memberSawProgramme.Load(); n != 0 {
		t.Errorf("the member was sent %d programme tracks", n)
	}
	for _, p := range member.GetRemoteParticipants() {
		if p.Identity() != "chair" {
			t.Errorf("the member sees participant %q", p.Identity())
		}
	}
}
