package sfu

import (
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// FuzzPublisherOffer gives an offer of any contents to a new publisher transport, as the
// signalling hands it the client's SessionDescription, with the codecs the client may have
// asked for in its AddTrackRequest, as the first offer or as a renegotiation after a browser's
// (the high bit of the second input). Nothing panics; an offer refused is refused with a reason,
// and leaves the transport as it was: the real offer of a browser is answered on it next. An
// answer given is an SDP answer that parses, with one m-line for each of the offer's, in order.
// The seeds are Chromium's LiveKit offer and the offers of pion clients publishing and of an
// SDK's first offer, which carries only its data channels.
func FuzzPublisherOffer(f *testing.F) {
	chrome := strings.ReplaceAll(chromeOffer, "\n", "\r\n")
	f.Add(chrome, byte(0))
	f.Add(chrome, byte(1))
	f.Add(chrome[:len(chrome)/2], byte(0))
	f.Add(chrome, byte(0x80))
	f.Add(strings.Replace(chrome, "a=ice-ufrag:Xm1U", "a=ice-ufrag:Zz9Q", 1), byte(0x81))
	f.Add("v=0\r\n", byte(0x80))
	for _, seed := range clientOffers(f) {
		f.Add(seed, byte(0))
		f.Add(seed, byte(2))
	}
	f.Add("v=0\r\n", byte(0))
	f.Add("", byte(3))

	e, err := NewEngine(Config{UDPAddr: "127.0.0.1:0", LoopbackOnly: true, Logger: discardLogger()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = e.Close() })
	wishes := [][]string{nil, {webrtc.MimeTypeVP9, webrtc.MimeTypeVP8}, {webrtc.MimeTypeH264}, {"video/AV1", "audio/opus"}}

	f.Fuzz(func(t *testing.T, offer string, wish byte) {
		tr, err := e.NewTransport(PublisherRole, TransportHandlers{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tr.Close() }()
		if wish&0x80 != 0 { // a renegotiation: the browser's first offer was answered
			if _, err := tr.Answer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: chrome}, nil); err != nil {
				t.Fatal(err)
			}
		}
		w := wishes[int(wish)%len(wishes)]
		answer, err := tr.Answer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer},
			func(string) []string { return w })
		if refusal := err; refusal != nil {
			if strings.TrimSpace(refusal.Error()) == "" {
				t.Fatal("an offer was refused without a reason")
			}
			if _, err := tr.Answer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: chrome}, nil); err != nil {
				t.Fatalf("after the refused offer (%v), a browser's offer is refused: %v", refusal, err)
			}
			return
		}
		if answer.Type != webrtc.SDPTypeAnswer {
			t.Fatalf("the answer is of type %s", answer.Type)
		}
		var in, out sdp.SessionDescription
		if err := out.UnmarshalString(answer.SDP); err != nil {
			t.Fatalf("the answer does not parse: %v\n%s", err, answer.SDP)
		}
		if err := in.UnmarshalString(offer); err != nil {
			return // pion reads some offers its own SDP package refuses: nothing to compare
		}
		if len(out.MediaDescriptions) != len(in.MediaDescriptions) {
			t.Fatalf("the answer has %d m-lines for the offer's %d", len(out.MediaDescriptions), len(in.MediaDescriptions))
		}
		for i, m := range in.MediaDescriptions {
			mid, _ := m.Attribute(sdp.AttrKeyMID)
			if got, _ := out.MediaDescriptions[i].Attribute(sdp.AttrKeyMID); got != mid {
				t.Fatalf("m-line %d: the answer's mid is %q, the offer's %q", i, got, mid)
			}
		}
	})
}

// clientOffers are real offers of pion clients: one publishing a microphone and a camera with
// simulcast, and a LiveKit SDK's first, with only its reliable and lossy data channels.
func clientOffers(f *testing.F) []string {
	var offers []string
	for _, media := range []bool{true, false} {
		api := newFuzzClientAPI(f)
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			f.Fatal(err)
		}
		if media {
			mic, err := webrtc.NewTrackLocalStaticRTP(opusCapability, "TR_mic", "PA_pion")
			if err != nil {
				f.Fatal(err)
			}
			if _, err := pc.AddTrack(mic); err != nil {
				f.Fatal(err)
			}
			var layers []*webrtc.TrackLocalStaticRTP
			for _, rid := range []string{"q", "h", "f"} {
				l, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
					"TR_cam", "PA_pion", webrtc.WithRTPStreamID(rid))
				if err != nil {
					f.Fatal(err)
				}
				layers = append(layers, l)
			}
			sender, err := pc.AddTrack(layers[0])
			if err != nil {
				f.Fatal(err)
			}
			for _, l := range layers[1:] {
				if err := sender.AddEncoding(l); err != nil {
					f.Fatal(err)
				}
			}
		}
		ordered := false
		if _, err := pc.CreateDataChannel(labelReliable, nil); err != nil {
			f.Fatal(err)
		}
		if _, err := pc.CreateDataChannel(labelLossy, &webrtc.DataChannelInit{Ordered: &ordered}); err != nil {
			f.Fatal(err)
		}
		offer, err := pc.CreateOffer(nil)
		if err != nil {
			f.Fatal(err)
		}
		offers = append(offers, offer.SDP)
		_ = pc.Close()
	}
	return offers
}

// newFuzzClientAPI is a client with pion's default codecs and the simulcast extensions.
func newFuzzClientAPI(f *testing.F) *webrtc.API {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		f.Fatal(err)
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		f.Fatal(err)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m))
}
