package sfu

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// The loopback tests run the SFU between two real pion peer connections acting as clients, all
// on 127.0.0.1. They wait for conditions with a generous deadline; nothing asserts on timing.

const waitLimit = 15 * time.Second

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newTestEngine(t *testing.T, tcp bool) *Engine {
	t.Helper()
	cfg := Config{UDPAddr: "127.0.0.1:0", LoopbackOnly: true, Logger: discardLogger()}
	if tcp {
		cfg.TCPAddr = "127.0.0.1:0"
	}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type clientOptions struct {
	tcpOnly bool
	noRED   bool // register Opus without RED
	red     bool // register RED (for a publisher of RED)
	twcc    bool // negotiate transport-cc and send its feedback (pion's interceptor), as the SDKs do
}

// newClientAPI is a browser stand-in: Opus, VP8 and the others by default, the simulcast and
// audio-level extensions, loopback only, and no interceptors, so that the only NACK a test sees
// is the one it sends. SRTP replay protection is off because the test "loses" a packet after
// it was decrypted and then receives its retransmission with the same sequence number.
func newClientAPI(t *testing.T, o clientOptions) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	if o.red {
		if err := m.RegisterCodec(redCodec, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uriAudioLevel}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	s := webrtc.SettingEngine{LoggerFactory: pionLoggerFactory{log: discardLogger()}}
	s.SetIncludeLoopbackCandidate(true)
	s.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	s.DisableSRTPReplayProtection(true)
	if o.tcpOnly {
		s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	reg := &interceptor.Registry{}
	if o.twcc {
		if err := webrtc.ConfigureTWCCSender(m, reg); err != nil {
			t.Fatal(err)
		}
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(s), webrtc.WithInterceptorRegistry(reg))
}

// testPeer is a client peer connection that, like LiveKit's clients, keeps trickled candidates
// until it has the remote description.
type testPeer struct {
	t  *testing.T
	pc *webrtc.PeerConnection

	mu        sync.Mutex
	remoteSet bool
	pending   []webrtc.ICECandidateInit
}

func newTestPeer(t *testing.T, api *webrtc.API) *testPeer {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return &testPeer{t: t, pc: pc}
}

func (p *testPeer) addCandidate(c webrtc.ICECandidateInit) {
	p.mu.Lock()
	if !p.remoteSet {
		p.pending = append(p.pending, c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	if err := p.pc.AddICECandidate(c); err != nil {
		p.t.Errorf("client: add SFU candidate: %v", err)
	}
}

func (p *testPeer) setRemote(d webrtc.SessionDescription) error {
	if err := p.pc.SetRemoteDescription(d); err != nil {
		return err
	}
	p.mu.Lock()
	p.remoteSet = true
	pending := p.pending
	p.pending = nil
	p.mu.Unlock()
	for _, c := range pending {
		if err := p.pc.AddICECandidate(c); err != nil {
			return err
		}
	}
	return nil
}

// answerOffer has the client make its offer and the transport answer it.
func answerOffer(t *testing.T, client *testPeer, tr *Transport) webrtc.SessionDescription {
	t.Helper()
	offer, err := client.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	answer, err := tr.Answer(offer, nil)
	if err != nil {
		t.Fatal(err)
	}
	return answer
}

// publish connects a client that already added its tracks to a new publisher transport.
func publish(t *testing.T, e *Engine, client *testPeer, h TransportHandlers) *Transport {
	t.Helper()
	h.OnICECandidate = client.addCandidate
	tr, err := e.NewTransport(PublisherRole, h)
	if err != nil {
		t.Fatal(err)
	}
	client.pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			if err := tr.AddICECandidate(c.ToJSON()); err != nil {
				t.Errorf("SFU: add client candidate: %v", err)
			}
		}
	})
	if err := client.setRemote(answerOffer(t, client, tr)); err != nil {
		t.Fatal(err)
	}
	return tr
}

// subscribe creates a subscriber transport whose negotiations the client answers.
func subscribe(t *testing.T, e *Engine, client *testPeer) *Transport {
	t.Helper()
	var tr *Transport
	h := TransportHandlers{
		OnICECandidate: client.addCandidate,
		OnNegotiationNeeded: func() {
			offer, err := tr.Offer(false)
			if err != nil {
				t.Errorf("SFU offer: %v", err)
				return
			}
			if err := client.setRemote(offer); err != nil {
				t.Errorf("client: apply offer: %v", err)
				return
			}
			answer, err := client.pc.CreateAnswer(nil)
			if err != nil {
				t.Errorf("client: create answer: %v", err)
				return
			}
			if err := client.pc.SetLocalDescription(answer); err != nil {
				t.Errorf("client: apply answer: %v", err)
				return
			}
			if err := tr.SetAnswer(answer); err != nil {
				t.Errorf("SFU: apply answer: %v", err)
			}
		},
	}
	var err error
	tr, err = e.NewTransport(SubscriberRole, h)
	if err != nil {
		t.Fatal(err)
	}
	client.pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			if err := tr.AddICECandidate(c.ToJSON()); err != nil {
				t.Errorf("SFU: add client candidate: %v", err)
			}
		}
	})
	return tr
}

// rtpPublisher is a client publishing one track written as RTP.
type rtpPublisher struct {
	client    *testPeer
	track     *webrtc.TrackLocalStaticRTP
	sender    *webrtc.RTPSender // reads the RTCP the SFU sends back
	transport *Transport        // the SFU's side
	tracks    chan *PublishedTrack
}

// publishRTP connects a client (of the given options) publishing one track of codec. The SFU's
// PublishedTrack arrives on tracks once the first packet has.
func publishRTP(t *testing.T, e *Engine, o clientOptions, codec webrtc.RTPCodecCapability, trackID, streamID string) rtpPublisher {
	t.Helper()
	pub := newTestPeer(t, newClientAPI(t, o))
	track, err := webrtc.NewTrackLocalStaticRTP(codec, trackID, streamID)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := pub.pc.AddTrack(track)
	if err != nil {
		t.Fatal(err)
	}
	tracks := make(chan *PublishedTrack, 1)
	tr := publish(t, e, pub, TransportHandlers{OnTrack: func(p *PublishedTrack) { tracks <- p }})
	return rtpPublisher{client: pub, track: track, sender: sender, transport: tr, tracks: tracks}
}

var (
	opusCapability = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	vp8Capability  = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
)

// firstTrack waits for the published track.
func firstTrack(t *testing.T, tracks <-chan *PublishedTrack) *PublishedTrack {
	t.Helper()
	select {
	case p := <-tracks:
		return p
	case <-time.After(waitLimit):
		t.Fatal("the SFU reported no published track")
		return nil
	}
}

func extensionID(t *testing.T, params []webrtc.RTPHeaderExtensionParameter, uri string) uint8 {
	t.Helper()
	for _, e := range params {
		if e.URI == uri {
			return uint8(e.ID)
		}
	}
	t.Fatalf("extension %s not negotiated", uri)
	return 0
}

// keyframeRequests reads a client sender's RTCP for one rid and counts the PLIs, raising need.
func keyframeRequests(sender *webrtc.RTPSender, rid string, need *atomic.Bool, count *atomic.Int32) {
	for {
		var pkts []rtcp.Packet
		var err error
		if rid == "" {
			pkts, _, err = sender.ReadRTCP()
		} else {
			pkts, _, err = sender.ReadSimulcastRTCP(rid)
		}
		if err != nil {
			return
		}
		for _, p := range pkts {
			if _, ok := p.(*rtcp.PictureLossIndication); ok {
				need.Store(true)
				count.Add(1)
			}
		}
	}
}

// sfuGoroutines lists the goroutines running this package's code, other than tests.
func sfuGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "hemicycle/sfu.") && !strings.Contains(g, "hemicycle/sfu.Test") &&
			!strings.Contains(g, "hemicycle/sfu.eventually") && !strings.Contains(g, "sfuGoroutines") {
			out = append(out, g)
		}
	}
	return out
}

func checkNoGoroutinesLeft(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		left := sfuGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of the sfu package still run:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// received is what a client got on one track.
type received struct {
	mu      sync.Mutex
	packets []sentPacket
}

func (r *received) add(p *rtp.Packet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.packets = append(r.packets, sentPacket{hdr: p.Header, payload: append([]byte(nil), p.Payload...)})
}

func (r *received) snapshot() []sentPacket {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sentPacket(nil), r.packets...)
}

func (r *received) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.packets)
}

// collect keeps every RTP packet p receives, on any track.
func collect(p *testPeer) *received {
	got := &received{}
	p.pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			pkt, _, err := remote.ReadRTP()
			if err != nil {
				return
			}
			got.add(pkt)
		}
	})
	return got
}

func TestLoopbackPublishSubscribe(t *testing.T) {
	e := newTestEngine(t, false)
	defer func() { _ = e.Close() }()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	// The publishing client: Opus written as RTP (with an audio level of -25 dBov), VP8 written
	// as samples, and LiveKit's two data channels.
	pub := newTestPeer(t, newClientAPI(t, clientOptions{}))
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "TR_mic", "PA_pub")
	if err != nil {
		t.Fatal(err)
	}
	audioSender, err := pub.pc.AddTrack(audio)
	if err != nil {
		t.Fatal(err)
	}
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "TR_cam", "PA_pub")
	if err != nil {
		t.Fatal(err)
	}
	videoSender, err := pub.pc.AddTrack(video)
	if err != nil {
		t.Fatal(err)
	}
	reliable, err := pub.pc.CreateDataChannel(labelReliable, nil)
	if err != nil {
		t.Fatal(err)
	}
	zero := uint16(0)
	unordered := false
	lossy, err := pub.pc.CreateDataChannel(labelLossy, &webrtc.DataChannelInit{Ordered: &unordered, MaxRetransmits: &zero})
	if err != nil {
		t.Fatal(err)
	}
	fromSFU := make(chan string, 4)
	reliable.OnMessage(func(m webrtc.DataChannelMessage) { fromSFU <- string(m.Data) })

	tracks := make(chan *PublishedTrack, 4)
	type dataMsg struct {
		reliable bool
		data     string
	}
	dataIn := make(chan dataMsg, 4)
	var pubState atomic.Value
	pubT := publish(t, e, pub, TransportHandlers{
		OnTrack: func(p *PublishedTrack) { tracks <- p },
		OnData:  func(r bool, d []byte) { dataIn <- dataMsg{r, string(d)} },
		OnStateChange: func(s webrtc.PeerConnectionState) {
			pubState.Store(s)
		},
	})

	// Media: 20 ms Opus packets with distinct payloads, 30 fps VP8 of three packets a frame,
	// with a keyframe every second or when the SFU asks for one.
	levelID := extensionID(t, audioSender.GetParameters().HeaderExtensions, uriAudioLevel)
	var sentMu sync.Mutex
	var sentOpus [][]byte
	var needKey atomic.Bool
	var plis atomic.Int32
	go keyframeRequests(videoSender, "", &needKey, &plis)
	go pace(ctx, 20*time.Millisecond, func(i int) error {
		payload := []byte{0xfc, byte(i >> 8), byte(i), 0x5a, byte(i * 7), byte(i * 13)}
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(i), Timestamp: uint32(i) * 960}, Payload: payload}
		if err := pkt.Header.SetExtension(levelID, []byte{25}); err != nil {
			t.Error(err)
			return err
		}
		sentMu.Lock()
		sentOpus = append(sentOpus, payload)
		sentMu.Unlock()
		return audio.WriteRTP(pkt)
	})
	go pace(ctx, 33*time.Millisecond, func(i int) error {
		key := i%30 == 0 || needKey.Swap(false)
		frame := bytes.Repeat([]byte{byte(i)}, 3000)
		if key {
			copy(frame, []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a})
		} else {
			copy(frame, []byte{0x11, 0x02, 0x00})
		}
		return video.WriteSample(media.Sample{Data: frame, Duration: 33 * time.Millisecond})
	})

	var micTrack, camTrack *PublishedTrack
	for micTrack == nil || camTrack == nil {
		select {
		case p := <-tracks:
			if p.Kind() == webrtc.RTPCodecTypeAudio {
				micTrack = p
			} else {
				camTrack = p
			}
		case <-time.After(waitLimit):
			t.Fatal("the SFU reported no published tracks")
		}
	}
	if micTrack.ID() != "TR_mic" || micTrack.StreamID() != "PA_pub" || micTrack.MimeType() != webrtc.MimeTypeOpus {
		t.Fatalf("audio track = %s %s %s", micTrack.ID(), micTrack.StreamID(), micTrack.MimeType())
	}
	if camTrack.ID() != "TR_cam" || len(camTrack.Layers()) != 0 {
		t.Fatalf("video track = %s layers %v", camTrack.ID(), camTrack.Layers())
	}

	// The subscribing client.
	sub := newTestPeer(t, newClientAPI(t, clientOptions{}))
	var gotAudio, gotVideo received
	var subAudioLevelID atomic.Uint32
	var nacked atomic.Int32 // the sequence number dropped and NACKed, +1 (0: not yet)
	var nackedPayload atomic.Value
	var retransmitted, audioEnded atomic.Bool
	sub.pc.OnTrack(func(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		if remote.Kind() == webrtc.RTPCodecTypeAudio {
			for _, x := range recv.GetParameters().HeaderExtensions {
				if x.URI == uriAudioLevel {
					subAudioLevelID.Store(uint32(x.ID))
				}
			}
		}
		for {
			pkt, _, err := remote.ReadRTP()
			if err != nil {
				if remote.Kind() == webrtc.RTPCodecTypeAudio {
					audioEnded.Store(true)
				}
				return
			}
			if remote.Kind() == webrtc.RTPCodecTypeAudio {
				gotAudio.add(pkt)
				continue
			}
			n := gotVideo.len()
			switch {
			case n == 40 && nacked.Load() == 0:
				// Lose this packet on purpose and ask for it again.
				nackedPayload.Store(append([]byte(nil), pkt.Payload...))
				nacked.Store(int32(pkt.SequenceNumber) + 1)
				err := sub.pc.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{
					MediaSSRC: uint32(remote.SSRC()),
					Nacks:     rtcp.NackPairsFromSequenceNumbers([]uint16{pkt.SequenceNumber}),
				}})
				if err != nil {
					t.Errorf("client: send NACK: %v", err)
				}
				continue
			case nacked.Load() == int32(pkt.SequenceNumber)+1:
				if want, _ := nackedPayload.Load().([]byte); bytes.Equal(pkt.Payload, want) {
					retransmitted.Store(true)
				} else {
					t.Errorf("retransmission of %d carries %x, want %x", pkt.SequenceNumber, pkt.Payload[:8], want[:8])
				}
			}
			gotVideo.add(pkt)
		}
	})
	subT := subscribe(t, e, sub)
	micDown, err := subT.Subscribe(micTrack, "TR_mic", "PA_pub|TR_mic")
	if err != nil {
		t.Fatal(err)
	}
	camDown, err := subT.Subscribe(camTrack, "TR_cam", "PA_pub|TR_cam")
	if err != nil {
		t.Fatal(err)
	}

	eventually(t, "60 audio and 90 video packets at the subscriber", func() bool {
		return gotAudio.len() >= 60 && gotVideo.len() >= 90
	})
	eventually(t, "the NACKed packet to come back", retransmitted.Load)
	if camDown.Retransmits() < 1 {
		t.Errorf("the DownTrack counted no retransmission")
	}

	// Opus arrives byte for byte, with continuous numbering, and with the audio level under
	// the subscriber's extension id.
	audioPkts := gotAudio.snapshot()
	sentMu.Lock()
	first := -1
	for i, s := range sentOpus {
		if bytes.Equal(s, audioPkts[0].payload) {
			first = i
			break
		}
	}
	if first < 0 {
		t.Fatalf("first Opus payload received %x was never sent", audioPkts[0].payload)
	}
	for i, p := range audioPkts {
		if first+i >= len(sentOpus) || !bytes.Equal(p.payload, sentOpus[first+i]) {
			t.Fatalf("Opus packet %d = %x, want %x", i, p.payload, sentOpus[first+i])
		}
		if i > 0 && p.hdr.SequenceNumber != audioPkts[i-1].hdr.SequenceNumber+1 {
			t.Fatalf("Opus sequence %d follows %d", p.hdr.SequenceNumber, audioPkts[i-1].hdr.SequenceNumber)
		}
	}
	sentMu.Unlock()
	if lv := audioPkts[len(audioPkts)-1].hdr.GetExtension(uint8(subAudioLevelID.Load())); !bytes.Equal(lv, []byte{25}) {
		t.Errorf("audio level at the subscriber = %x, want 19 (25 → -25 dBov)", lv)
	}
	if lvl, active := micTrack.AudioLevel(); lvl < -25.5 || lvl > -24.5 || !active {
		t.Errorf("AudioLevel = %v %v, want about -25 and speaking", lvl, active)
	}

	// Video starts on a keyframe the SFU asked for.
	videoPkts := gotVideo.snapshot()
	if !vp8KeyframeStart(videoPkts[0].payload) {
		t.Errorf("the first video packet is not the start of a keyframe: %x", videoPkts[0].payload[:8])
	}
	if plis.Load() == 0 {
		t.Errorf("the publisher never received a keyframe request")
	}
	if p, b := micDown.Stats(); p < 60 || b == 0 {
		t.Errorf("audio DownTrack stats = %d packets %d bytes", p, b)
	}
	if p, b := camTrack.Stats(); p < 90 || b < 90*1000 {
		t.Errorf("video PublishedTrack stats = %d packets %d bytes", p, b)
	}

	// Data channels both ways.
	if err := reliable.Send([]byte("motion 4")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "lossy channel open", func() bool { return lossy.ReadyState() == webrtc.DataChannelStateOpen })
	if err := lossy.Send([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	gotData := map[dataMsg]bool{}
	for len(gotData) < 2 {
		select {
		case m := <-dataIn:
			gotData[m] = true
		case <-time.After(waitLimit):
			t.Fatalf("data messages received: %v", gotData)
		}
	}
	if !gotData[dataMsg{true, "motion 4"}] || !gotData[dataMsg{false, "ping"}] {
		t.Errorf("OnData delivered %v, want motion 4 on the reliable channel and ping on the lossy one", gotData)
	}
	if err := pubT.SendData(true, []byte("quorum reached")); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-fromSFU:
		if got != "quorum reached" {
			t.Errorf("client got %q", got)
		}
	case <-time.After(waitLimit):
		t.Fatal("the client got no data from the SFU")
	}
	if err := subT.SendData(true, []byte("x")); err == nil {
		t.Errorf("SendData on a transport without data channels succeeded")
	}
	if s, _ := pubState.Load().(webrtc.PeerConnectionState); s != webrtc.PeerConnectionStateConnected {
		t.Errorf("publisher state = %v, want connected", s)
	}

	// Unsubscribing renegotiates; the track stops reaching the client.
	if err := subT.Unsubscribe(micDown); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the client's audio receiver to end and the renegotiation to complete", func() bool {
		return audioEnded.Load() && subT.pc.SignalingState() == webrtc.SignalingStateStable &&
			sub.pc.SignalingState() == webrtc.SignalingStateStable
	})
	if n := len(*micTrack.downTracks.Load()); n != 0 {
		t.Errorf("the audio track still fans out to %d DownTracks", n)
	}

	// The publisher leaves: its tracks end.
	stop()
	if err := pub.pc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pubT.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-camTrack.Done():
	case <-time.After(waitLimit):
		t.Fatal("the video track did not end with its publisher")
	}
	select {
	case <-micTrack.Done():
	case <-time.After(waitLimit):
		t.Fatal("the audio track did not end with its publisher")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tr := range []*Transport{pubT, subT} {
		select {
		case <-tr.Done():
		case <-time.After(waitLimit):
			t.Fatalf("%s transport goroutines did not end", tr.Role())
		}
	}
	checkNoGoroutinesLeft(t)
}

func TestLoopbackSimulcastSwitch(t *testing.T) {
	e := newTestEngine(t, false)
	defer func() { _ = e.Close() }()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	// A simulcast publisher sending q, h and f on one m-line, like LiveKit's browser SDK. Each
	// packet is one VP8 frame whose last byte names its layer (upper case for keyframes).
	pub := newTestPeer(t, newClientAPI(t, clientOptions{}))
	rids := []string{"q", "h", "f"}
	var layers []*webrtc.TrackLocalStaticRTP
	for _, rid := range rids {
		l, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
			"TR_screen", "PA_chair", webrtc.WithRTPStreamID(rid))
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	sender, err := pub.pc.AddTrack(layers[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers[1:] {
		if err := sender.AddEncoding(l); err != nil {
			t.Fatal(err)
		}
	}
	params := sender.GetParameters()
	midID := extensionID(t, params.HeaderExtensions, sdp.SDESMidURI)
	ridID := extensionID(t, params.HeaderExtensions, sdp.SDESRTPStreamIDURI)
	var needKey [3]atomic.Bool
	var plis [3]atomic.Int32
	for i, rid := range rids {
		go keyframeRequests(sender, rid, &needKey[i], &plis[i])
	}

	tracks := make(chan *PublishedTrack, 1)
	publish(t, e, pub, TransportHandlers{OnTrack: func(p *PublishedTrack) { tracks <- p }})
	mid := ""
	for _, tr := range pub.pc.GetTransceivers() {
		if tr.Sender() == sender {
			mid = tr.Mid()
		}
	}
	go pace(ctx, 33*time.Millisecond, func(i int) error {
		for li, l := range layers {
			key := i%150 == 0 || needKey[li].Swap(false) // a keyframe every 5 s, or on request
			tag := rids[li][0]
			if key {
				tag -= 'a' - 'A'
			}
			pkt := &rtp.Packet{
				Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i + li*20000), Timestamp: uint32(i*3000 + li*777777)},
				Payload: vp8Frame(key, tag),
			}
			if err := pkt.Header.SetExtension(midID, []byte(mid)); err != nil {
				t.Error(err)
				return err
			}
			if err := pkt.Header.SetExtension(ridID, []byte(rids[li])); err != nil {
				t.Error(err)
				return err
			}
			if err := l.WriteRTP(pkt); err != nil {
				return err
			}
		}
		return nil
	})

	track := firstTrack(t, tracks)
	eventually(t, "three layers", func() bool { return len(track.Layers()) == 3 })
	if got := strings.Join(track.Layers(), ","); got != "q,h,f" {
		t.Fatalf("Layers = %s", got)
	}
	select {
	case p := <-tracks:
		t.Fatalf("OnTrack fired again for the same track (%s)", p.ID())
	default:
	}

	sub := newTestPeer(t, newClientAPI(t, clientOptions{}))
	got := collect(sub)
	subT := subscribe(t, e, sub)
	down, err := subT.Subscribe(track, "TR_screen", "PA_chair|TR_screen")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "20 packets of the f layer", func() bool { return got.len() >= 20 })
	qBefore := plis[0].Load()
	down.SetMaxQuality(QualityLow)
	eventually(t, "the q layer at the subscriber", func() bool {
		for _, p := range got.snapshot() {
			if last := p.payload[len(p.payload)-1]; last == 'q' || last == 'Q' {
				return true
			}
		}
		return false
	})
	if plis[0].Load() <= qBefore {
		t.Errorf("the q layer received no keyframe request for the switch")
	}

	pkts := got.snapshot()
	layerOf := func(p sentPacket) byte { return p.payload[len(p.payload)-1] | 0x20 }
	if pkts[0].payload[len(pkts[0].payload)-1] != 'F' {
		t.Errorf("the subscriber started on %q, want the f layer's keyframe", pkts[0].payload[len(pkts[0].payload)-1])
	}
	switched := false
	for i := 1; i < len(pkts); i++ {
		prev, cur := pkts[i-1], pkts[i]
		if layerOf(prev) == 'f' && layerOf(cur) == 'q' {
			switched = true
			if cur.payload[len(cur.payload)-1] != 'Q' {
				t.Errorf("the switch to q happened on a delta frame")
			}
			if cur.hdr.SequenceNumber != prev.hdr.SequenceNumber+1 {
				t.Errorf("sequence %d follows %d across the switch", cur.hdr.SequenceNumber, prev.hdr.SequenceNumber)
			}
			if int32(cur.hdr.Timestamp-prev.hdr.Timestamp) <= 0 {
				t.Errorf("timestamp %d follows %d across the switch", cur.hdr.Timestamp, prev.hdr.Timestamp)
			}
		}
		if layerOf(prev) == 'q' && layerOf(cur) != 'q' {
			t.Errorf("packet %d is from layer %c after the switch to q", i, layerOf(cur))
		}
		if cur.hdr.SSRC != prev.hdr.SSRC {
			t.Errorf("the SSRC changed at packet %d", i)
		}
	}
	if !switched {
		t.Errorf("no f → q transition in %d packets", len(pkts))
	}
	stop()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-track.Done():
	case <-time.After(waitLimit):
		t.Fatal("the track did not end when the engine closed")
	}
	checkNoGoroutinesLeft(t)
}

// TestLoopbackREDToPlainOpus publishes Opus with RED to a subscriber that only knows Opus: it
// must get the primary Opus payloads, byte for byte.
func TestLoopbackREDToPlainOpus(t *testing.T) {
	e := newTestEngine(t, false)
	defer func() { _ = e.Close() }()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	red := publishRTP(t, e, clientOptions{red: true}, redCodec.RTPCodecCapability, "TR_red", "PA_red")
	audio, tracks := red.track, red.tracks
	primaryOf := func(i int) []byte { return []byte{0xfc, byte(i >> 8), byte(i), 0x77} }
	go pace(ctx, 20*time.Millisecond, func(n int) error {
		i := n + 1
		payload := redPayload(111, primaryOf(i), redBlock{111, 960, primaryOf(i - 1)})
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i) * 960}, Payload: payload}
		return audio.WriteRTP(pkt)
	})
	track := firstTrack(t, tracks)
	if track.MimeType() != "audio/red" {
		t.Fatalf("published as %s, want audio/red", track.MimeType())
	}

	sub := newTestPeer(t, newClientAPI(t, clientOptions{})) // Opus only
	var got [2]received
	var codecs [2]atomic.Value
	sub.pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		i := 0
		if remote.ID() == "TR_red2" {
			i = 1
		}
		codecs[i].Store(remote.Codec().MimeType)
		for {
			pkt, _, err := remote.ReadRTP()
			if err != nil {
				return
			}
			got[i].add(pkt)
		}
	})
	subT := subscribe(t, e, sub)
	if _, err := subT.Subscribe(track, "TR_red", "PA_red|TR_red"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "20 Opus packets", func() bool { return got[0].len() >= 20 })
	// A second subscription after the client's answer refused RED: pion can no longer offer
	// RED on this connection, and the subscription must still go through, as Opus.
	if _, err := subT.Subscribe(track, "TR_red2", "PA_red|TR_red2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "20 Opus packets on the second subscription", func() bool { return got[1].len() >= 20 })
	for i := range got {
		if c, _ := codecs[i].Load().(string); !strings.EqualFold(c, webrtc.MimeTypeOpus) {
			t.Errorf("subscription %d receives %s, want Opus", i, c)
		}
		for _, p := range got[i].snapshot() {
			n := int(p.payload[1])<<8 | int(p.payload[2])
			if !bytes.Equal(p.payload, primaryOf(n)) {
				t.Fatalf("payload %x is not a primary Opus frame", p.payload)
			}
		}
	}
	stop()
	if err := red.client.pc.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-track.Done():
	case <-time.After(waitLimit):
		t.Fatal("the track did not end when its publisher left")
	}
	if _, err := subT.Subscribe(track, "TR_red3", "PA_red|TR_red3"); err == nil {
		t.Error("subscribing to an ended track succeeded")
	}
}

func TestLoopbackICETCP(t *testing.T) {
	e := newTestEngine(t, true)
	defer func() { _ = e.Close() }()
	if e.TCPPort() == 0 || e.UDPPort() == 0 {
		t.Fatalf("ports: udp %d tcp %d", e.UDPPort(), e.TCPPort())
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	pub := newTestPeer(t, newClientAPI(t, clientOptions{tcpOnly: true}))
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "TR_tcp", "PA_tcp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.pc.AddTrack(audio); err != nil {
		t.Fatal(err)
	}
	tracks := make(chan *PublishedTrack, 1)
	publish(t, e, pub, TransportHandlers{OnTrack: func(p *PublishedTrack) { tracks <- p }})
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			if err := audio.WriteSample(media.Sample{Data: []byte{0xfc, byte(i)}, Duration: 20 * time.Millisecond}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	select {
	case p := <-tracks:
		eventually(t, "packets over TCP", func() bool { n, _ := p.Stats(); return n >= 10 })
	case <-time.After(waitLimit):
		t.Fatal("no track over ICE-TCP")
	}
	pair, err := pub.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("no selected pair: %v", err)
	}
	if pair.Remote.Protocol != webrtc.ICEProtocolTCP || int(pair.Remote.Port) != e.TCPPort() {
		t.Errorf("selected remote candidate %s, want TCP on port %d", fmt.Sprint(pair.Remote), e.TCPPort())
	}
	stop()
}

// TestLoopbackUpstreamNACK: a packet lost between the publisher and the SFU is NACKed to the
// publisher.
func TestLoopbackUpstreamNACK(t *testing.T) {
	e := newTestEngine(t, false)
	defer func() { _ = e.Close() }()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	pub := publishRTP(t, e, clientOptions{}, vp8Capability, "TR_v", "PA_v")
	const lost = 20
	var nacked atomic.Bool
	go func() {
		for {
			pkts, _, err := pub.sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if n, ok := p.(*rtcp.TransportLayerNack); ok {
					for _, pair := range n.Nacks {
						for _, sn := range pair.PacketList() {
							if sn == lost {
								nacked.Store(true)
							}
						}
					}
				}
			}
		}
	}()
	go pace(ctx, 10*time.Millisecond, func(i int) error {
		sn := uint16(i)
		if sn == lost {
			return nil
		}
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: sn, Timestamp: uint32(sn) * 3000}, Payload: vp8Frame(sn == 0, byte(sn))}
		return pub.track.WriteRTP(pkt)
	})
	eventually(t, "a NACK for the lost packet at the publisher", nacked.Load)
	stop()
}

// TestLoopbackSubscriberEstimate: a subscriber that negotiates transport-cc (pion's feedback
// generator, as in the LiveKit Go SDK) gets a bandwidth estimate made from its feedback, and
// one that does not has none and is never paused.
func TestLoopbackSubscriberEstimate(t *testing.T) {
	e := newTestEngine(t, false)
	defer func() { _ = e.Close() }()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	cam := publishRTP(t, e, clientOptions{}, vp8Capability, "TR_cam", "PA_cam")
	payload := make([]byte, 1000)
	go pace(ctx, 20*time.Millisecond, func(i int) error { // about 400 kbit/s: a keyframe, then 1,000-byte packets every 20 ms
		copy(payload, vp8Frame(i%50 == 0, byte(i)))
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i) * 1800, Marker: true}, Payload: payload}
		return cam.track.WriteRTP(pkt)
	})
	track := firstTrack(t, cam.tracks)
	for _, withTWCC := range []bool{true, false} {
		sub := newTestPeer(t, newClientAPI(t, clientOptions{twcc: withTWCC}))
		got := collect(sub)
		subT := subscribe(t, e, sub)
		d, err := subT.Subscribe(track, "TR_cam", "PA_cam|TR_cam")
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "50 packets", func() bool { return got.len() >= 50 })
		st, _ := subT.Bandwidth()
		if !withTWCC {
			if st.Fed || d.StreamPaused() {
				t.Errorf("without transport-cc: %+v, paused %v; want no estimate and nothing paused", st, d.StreamPaused())
			}
			continue
		}
		eventually(t, "an estimate from the feedback", func() bool {
			st, _ = subT.Bandwidth()
			return st.Fed && st.Received > 200_000
		})
		if st.Congested || st.Estimate < st.Received {
			t.Errorf("on loopback: %+v, want uncongested and an estimate at least what was received", st)
		}
		t.Logf("estimate %.0f bit/s, received %.0f bit/s, queueing %v", st.Estimate, st.Received, st.QueueingDelay)
	}
}
