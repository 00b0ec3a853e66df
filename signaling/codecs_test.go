package signaling_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"
	"google.golang.org/protobuf/proto"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/test/media"
	"github.com/ingeco/hemicycle/test/netlab"
)

// The camera codec a publisher asks for in its AddTrackRequest is the one its subscribers
// receive, although its offer lists VP8 first: livekit-client sets its encoder up for the codec
// it asks for (VP9 with SVC, say) and sends whatever the answer puts first.
func TestPublisherGetsTheCodecItAskedFor(t *testing.T) {
	for _, c := range []struct {
		name, ask, want string // ask: AddTrackRequest's simulcast codec, as livekit-client names it
	}{
		{"VP9 asked for", "vp9", webrtc.MimeTypeVP9},
		{"nothing asked: the offer's first codec", "", webrtc.MimeTypeVP8},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts := startServer(t)
			var mu sync.Mutex
			var received []string // the codec of each video track bob is sent, as his SDK reads it
			var bobPackets int
			cb := lksdk.NewRoomCallback()
			cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
				if track.Kind() != webrtc.RTPCodecTypeVideo {
					return
				}
				mu.Lock()
				received = append(received, track.Codec().MimeType)
				mu.Unlock()
				for {
					if _, _, err := track.ReadRTP(); err != nil {
						return
					}
					mu.Lock()
					bobPackets++
					mu.Unlock()
				}
			}
			bob := join(t, ts, "salle", "bob", cb)
			sent := publishLikeABrowser(t, ts, "salle", "anne", c.ask)
			if !strings.EqualFold(sent, c.want) {
				t.Fatalf("the server's answer put %s first, want %s", sent, c.want)
			}
			signalingtest.Eventually(t, "bob receives anne's camera", 15*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return bobPackets >= 20
			})
			mu.Lock()
			got := append([]string(nil), received...)
			mu.Unlock()
			if len(got) != 1 || !strings.EqualFold(got[0], c.want) {
				t.Errorf("bob's SDK received video tracks in %v, want one in %s", got, c.want)
			}
			// The TrackInfo bob's SDK holds says the codec chosen.
			var info *livekit.TrackInfo
			for _, rp := range bob.GetRemoteParticipants() {
				for _, pub := range rp.TrackPublications() {
					if pub.Kind() == "video" {
						info = pub.TrackInfo()
					}
				}
			}
			if info == nil {
				t.Fatal("bob's SDK knows no video publication of anne's")
			}
			if !strings.EqualFold(info.GetMimeType(), c.want) || len(info.GetCodecs()) != 1 || !strings.EqualFold(info.GetCodecs()[0].GetMimeType(), c.want) {
				t.Errorf("bob's SDK reads the track's codec as %q, codecs %v; want %s", info.GetMimeType(), info.GetCodecs(), c.want)
			}
		})
	}
}

// publishLikeABrowser joins identity over a plain WebSocket and publishes a camera the way
// Chromium with livekit-client does: the offer lists the codecs in pion's default order (VP8
// first, as Chromium's), the AddTrackRequest names the codec asked for (none if ask is ""),
// and the camera then sends, as a browser does, the first codec of the server's answer (the
// VP9 or VP8 test pattern). It returns that codec once media flows.
func publishLikeABrowser(t *testing.T, ts *signalingtest.Server, room, identity, ask string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ws, _, err := websocket.DefaultDialer.Dial(ts.WS+"/rtc?protocol=17&access_token="+ts.Token(t, room, identity, auth.RoleMember, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	var wmu sync.Mutex
	send := func(req *livekit.SignalRequest) {
		data, err := proto.Marshal(req)
		if err != nil {
			t.Error(err)
			return
		}
		wmu.Lock()
		defer wmu.Unlock()
		_ = ws.WriteMessage(websocket.BinaryMessage, data)
	}

	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init, _ := json.Marshal(c.ToJSON())
		send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Trickle{Trickle: &livekit.TrickleRequest{
			CandidateInit: string(init), Target: livekit.SignalTarget_PUBLISHER,
		}}})
	})
	const cid = "camera-track"
	placeholder, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, cid, "anne-stream")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := pc.AddTransceiverFromTrack(placeholder, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	add := &livekit.AddTrackRequest{Cid: cid, Name: "camera", Type: livekit.TrackType_VIDEO, Source: livekit.TrackSource_CAMERA, Width: 160, Height: 120}
	if ask != "" {
		add.SimulcastCodecs = []*livekit.SimulcastCodec{{Codec: ask, Cid: cid}}
	}
	send(&livekit.SignalRequest{Message: &livekit.SignalRequest_AddTrack{AddTrack: add}})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Offer{Offer: &livekit.SessionDescription{Type: "offer", Sdp: offer.SDP, Id: 1}}})

	answers := make(chan string, 1)
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var resp livekit.SignalResponse
			if proto.Unmarshal(data, &resp) != nil {
				continue
			}
			switch {
			case resp.GetAnswer() != nil:
				select {
				case answers <- resp.GetAnswer().GetSdp():
				default:
				}
			case resp.GetTrickle() != nil && resp.GetTrickle().GetTarget() == livekit.SignalTarget_PUBLISHER:
				var c webrtc.ICECandidateInit
				if json.Unmarshal([]byte(resp.GetTrickle().GetCandidateInit()), &c) == nil {
					_ = pc.AddICECandidate(c)
				}
			}
		}
	}()
	go netlab.Every(ctx, 3*time.Second, func() { // the SDKs' keepalive: a silent client is dropped after 15 s
		send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Ping{Ping: time.Now().UnixMilli()}})
	})
	var answer string
	select {
	case answer = <-answers:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not answer the offer")
	}
	mime := firstVideoCodec(t, answer)
	frames, err := media.VP8Sized(160)
	if strings.EqualFold(mime, webrtc.MimeTypeVP9) {
		frames, err = media.VP9()
	}
	if err != nil {
		t.Fatal(err)
	}
	camera, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000}, cid, "anne-stream")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Sender().ReplaceTrack(camera); err != nil { // not sending yet: bound by the answer
		t.Fatal(err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	go signalingtest.Loop(ctx, frames, func(f media.Frame) error {
		return camera.WriteSample(pionmedia.Sample{Data: f.Data, Duration: f.Duration})
	})
	return mime
}

// firstVideoCodec is the MIME type of the first codec of the answer's video m-line.
func firstVideoCodec(t *testing.T, answer string) string {
	t.Helper()
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(answer); err != nil {
		t.Fatal(err)
	}
	for _, m := range parsed.MediaDescriptions {
		if m.MediaName.Media != "video" || len(m.MediaName.Formats) == 0 {
			continue
		}
		for _, a := range m.Attributes {
			if a.Key == "rtpmap" && strings.HasPrefix(a.Value, m.MediaName.Formats[0]+" ") {
				name, _, _ := strings.Cut(strings.TrimPrefix(a.Value, m.MediaName.Formats[0]+" "), "/")
				return "video/" + name
			}
		}
	}
	t.Fatalf("no video codec in the answer:\n%s", answer)
	return ""
}

// A subscriber whose decoders do not include the publisher's codec is not sent a track it
// cannot play: its SDK is never handed the video, and its connection still carries the rest.
func TestSubscriberThatCannotDecodeIsNotSentTheTrack(t *testing.T) {
	ts := startServer(t)
	var mu sync.Mutex
	handed := map[string][]string{} // the codecs of the tracks each SDK is handed
	heard := map[string]int{}       // the audio packets each receives
	watch := func(name string) *lksdk.RoomCallback {
		cb := lksdk.NewRoomCallback()
		cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
			mu.Lock()
			handed[name] = append(handed[name], track.Codec().MimeType)
			mu.Unlock()
			for {
				if _, _, err := track.ReadRTP(); err != nil {
					return
				}
				if track.Kind() == webrtc.RTPCodecTypeAudio {
					mu.Lock()
					heard[name]++
					mu.Unlock()
				}
			}
		}
		return cb
	}
	vp8Only := lksdk.WithCodecs([]livekit.Codec{{Mime: webrtc.MimeTypeOpus}, {Mime: webrtc.MimeTypeVP8}})
	join(t, ts, "salle", "claire", watch("claire"), vp8Only) // there before anne publishes
	bob := join(t, ts, "salle", "bob", watch("bob"))
	if sent := publishLikeABrowser(t, ts, "salle", "anne", "vp9"); !strings.EqualFold(sent, webrtc.MimeTypeVP9) {
		t.Fatalf("anne sends %s, want VP9", sent)
	}
	signalingtest.Eventually(t, "bob is sent anne's VP9 camera", 15*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handed["bob"]) == 1 && strings.EqualFold(handed["bob"][0], webrtc.MimeTypeVP9)
	})
	join(t, ts, "salle", "claude", watch("claude"), vp8Only) // joins when anne's camera is there
	// What bob publishes next reaches both: the answers that could not carry anne's camera
	// left their connections working (pion starts no sender of an answer a bind failed in).
	publish(t, bob, false)
	signalingtest.Eventually(t, "claire and claude, who decode only VP8, hear bob", 15*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return heard["claire"] >= 25 && heard["claude"] >= 25
	})
	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"claire", "claude"} {
		if got := handed[name]; len(got) != 1 || !strings.EqualFold(got[0], webrtc.MimeTypeOpus) {
			t.Errorf("%s, who decodes only VP8, was handed tracks in %v; want bob's Opus only", name, got)
		}
	}
}
