package sfu

import (
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// answerFormats answers the captured Chrome offer (VP8 first in its video m-line, as Chromium
// always offers, whatever codec livekit-client set its encoder up for) with the given wishes
// and returns the payload types of the answer's audio and video m-lines, in order.
func answerFormats(t *testing.T, wishes CodecWishes) (audio, video []string) {
	t.Helper()
	e := newTestEngine(t, true)
	t.Cleanup(func() { _ = e.Close() })
	tr, err := e.NewTransport(PublisherRole, TransportHandlers{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	answer, err := tr.Answer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: strings.ReplaceAll(chromeOffer, "\n", "\r\n")}, wishes)
	if err != nil {
		t.Fatal(err)
	}
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(answer.SDP); err != nil {
		t.Fatal(err)
	}
	return parsed.MediaDescriptions[0].MediaName.Formats, parsed.MediaDescriptions[1].MediaName.Formats
}

func TestAnswerPutsTheCodecsAskedForFirst(t *testing.T) {
	for _, c := range []struct {
		name                 string
		wish                 map[string][]string // track id -> codecs asked for
		firstAudio, firstVid string
	}{
		{"nothing asked: the offer's order, RED first", nil, "63", "96"},
		{"VP9 asked for the camera", map[string][]string{"TR_cam": {"video/vp9"}}, "63", "98"},
		{"H.264 asked, with a VP8 fallback", map[string][]string{"TR_cam": {"video/H264", "video/VP8"}}, "63", "102"},
		{"a codec the offer lacks: the offer's order", map[string][]string{"TR_cam": {"video/AV1X"}}, "63", "96"},
		{"Opus without RED asked for the microphone", map[string][]string{"TR_mic": {"audio/opus"}}, "111", "96"},
		{"a wish for another track changes nothing here", map[string][]string{"TR_other": {"video/vp9"}}, "63", "96"},
	} {
		t.Run(c.name, func(t *testing.T) {
			audio, video := answerFormats(t, func(id string) []string { return c.wish[id] })
			if len(audio) == 0 || audio[0] != c.firstAudio {
				t.Errorf("audio m-line formats %v, want %s first", audio, c.firstAudio)
			}
			if len(video) == 0 || video[0] != c.firstVid {
				t.Errorf("video m-line formats %v, want %s first", video, c.firstVid)
			}
			if !containsAll(video, "96", "97", "98", "99") {
				t.Errorf("video m-line formats %v lost VP8 or VP9 or their RTX", video)
			}
		})
	}
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// A subscriber whose answer cannot carry the published codec (it decodes no VP9) is bound
// without failing pion's negotiation, sent nothing, and reported as refused.
func TestSubscriberWithoutTheCodecIsRefusedNotFailed(t *testing.T) {
	vp9 := webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0"},
		PayloadType:        98,
	}
	p, layers := testTrack(t, vp9, webrtc.RTPCodecTypeVideo, nil, nil, "")
	w := &recordWriter{}
	d := bindDownTrack(t, p, w, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	if !d.CodecRefused() {
		t.Fatal("a VP9 track bound to a VP8-only subscriber is not reported refused")
	}
	f := newFeeder(t, p)
	f.send(layers[0], 98, 1, 1000, []byte{0x88, 0x00, 0x01, 0x02}) // B, not P: a keyframe start
	f.send(layers[0], 98, 2, 4000, []byte{0xc8, 0x00, 0x01, 0x02})
	if n := len(w.sent()); n != 0 {
		t.Errorf("%d packets sent to a subscriber that cannot decode them", n)
	}
	able := bindDownTrack(t, p, &recordWriter{}, []webrtc.RTPCodecParameters{vp8Codec, vp9}, nil)
	if able.CodecRefused() {
		t.Error("a subscriber that took VP9 is reported refused")
	}
}
