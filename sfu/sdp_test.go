package sfu

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// chromeOffer is a publisher offer in the shape Chromium sends for LiveKit: Opus with RED,
// simulcast video with its full codec list, and the SDK's data channels.
const chromeOffer = `v=0
o=- 4215775240449105457 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1 2
a=extmap-allow-mixed
a=msid-semantic: WMS PA_chrome
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:Xm1U
a=ice-pwd:sZ4Jd9aTqE9+8d2kBSFzmkvK
a=ice-options:trickle
a=fingerprint:sha-256 8B:87:09:8A:5D:C2:F3:33:EF:C5:B1:F6:84:3A:3D:D6:A3:E2:9C:17:4C:E7:46:3B:1B:CE:84:98:DD:8E:AF:7B
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendonly
a=msid:PA_chrome TR_mic
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=ssrc:1001 cname:chrome
a=ssrc:1001 msid:PA_chrome TR_mic
m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 102 103 104 105 106 107 108 109 127 125 39 40 45 46 112 113
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:Xm1U
a=ice-pwd:sZ4Jd9aTqE9+8d2kBSFzmkvK
a=ice-options:trickle
a=fingerprint:sha-256 8B:87:09:8A:5D:C2:F3:33:EF:C5:B1:F6:84:3A:3D:D6:A3:E2:9C:17:4C:E7:46:3B:1B:CE:84:98:DD:8E:AF:7B
a=setup:actpass
a=mid:1
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:13 urn:3gpp:video-orientation
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
a=sendonly
a=msid:PA_chrome TR_cam
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:98 VP9/90000
a=rtcp-fb:98 transport-cc
a=rtcp-fb:98 nack
a=rtcp-fb:98 nack pli
a=fmtp:98 profile-id=0
a=rtpmap:99 rtx/90000
a=fmtp:99 apt=98
a=rtpmap:100 VP9/90000
a=fmtp:100 profile-id=2
a=rtpmap:101 rtx/90000
a=fmtp:101 apt=100
a=rtpmap:102 H264/90000
a=rtcp-fb:102 transport-cc
a=rtcp-fb:102 nack
a=rtcp-fb:102 nack pli
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
a=rtpmap:103 rtx/90000
a=fmtp:103 apt=102
a=rtpmap:104 H264/90000
a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f
a=rtpmap:105 rtx/90000
a=fmtp:105 apt=104
a=rtpmap:106 H264/90000
a=rtcp-fb:106 nack
a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:107 rtx/90000
a=fmtp:107 apt=106
a=rtpmap:108 H264/90000
a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f
a=rtpmap:109 rtx/90000
a=fmtp:109 apt=108
a=rtpmap:127 H264/90000
a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f
a=rtpmap:125 rtx/90000
a=fmtp:125 apt=127
a=rtpmap:39 H264/90000
a=fmtp:39 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=4d001f
a=rtpmap:40 rtx/90000
a=fmtp:40 apt=39
a=rtpmap:45 AV1/90000
a=rtpmap:46 rtx/90000
a=fmtp:46 apt=45
a=rtpmap:112 H264/90000
a=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f
a=rtpmap:113 rtx/90000
a=fmtp:113 apt=112
a=rid:q send
a=rid:h send
a=rid:f send
a=simulcast:send q;h;f
m=application 9 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 0.0.0.0
a=ice-ufrag:Xm1U
a=ice-pwd:sZ4Jd9aTqE9+8d2kBSFzmkvK
a=ice-options:trickle
a=fingerprint:sha-256 8B:87:09:8A:5D:C2:F3:33:EF:C5:B1:F6:84:3A:3D:D6:A3:E2:9C:17:4C:E7:46:3B:1B:CE:84:98:DD:8E:AF:7B
a=setup:actpass
a=mid:2
a=sctp-port:5000
a=max-message-size:262144
`

func TestAnswerToChromeOffer(t *testing.T) {
	e := newTestEngine(t, true)
	defer func() { _ = e.Close() }()
	var mu sync.Mutex
	var cands []webrtc.ICECandidateInit
	tr, err := e.NewTransport(PublisherRole, TransportHandlers{OnICECandidate: func(c webrtc.ICECandidateInit) {
		mu.Lock()
		cands = append(cands, c)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	offer := strings.ReplaceAll(chromeOffer, "\n", "\r\n")
	answer, err := tr.Answer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(answer.SDP); err != nil {
		t.Fatal(err)
	}
	if len(parsed.MediaDescriptions) != 3 {
		t.Fatalf("answer has %d m-lines, want 3", len(parsed.MediaDescriptions))
	}
	audio, video := parsed.MediaDescriptions[0], parsed.MediaDescriptions[1]
	codecs := func(m *sdp.MediaDescription) string {
		var out []string
		for _, a := range m.Attributes {
			if a.Key == "rtpmap" || a.Key == "fmtp" {
				out = append(out, a.Key+":"+a.Value)
			}
		}
		return strings.Join(out, "\n")
	}
	attrs := func(m *sdp.MediaDescription, key string) string {
		var out []string
		for _, a := range m.Attributes {
			if a.Key == key {
				out = append(out, a.Value)
			}
		}
		return strings.Join(out, "\n")
	}
	for _, want := range []string{"rtpmap:111 opus/48000/2", "rtpmap:63 red/48000/2", "fmtp:63 111/111"} {
		if !strings.Contains(codecs(audio), want) {
			t.Errorf("audio answer lacks %q:\n%s", want, codecs(audio))
		}
	}
	for _, bad := range []string{"G722", "PCMU"} {
		if strings.Contains(codecs(audio), bad) {
			t.Errorf("audio answer accepts %s", bad)
		}
	}
	for _, want := range []string{
		"rtpmap:96 VP8/90000", "rtpmap:97 rtx/90000",
		"rtpmap:98 VP9/90000", "fmtp:98 profile-id=0",
		"fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
		"fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		"fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
	} {
		if !strings.Contains(codecs(video), want) {
			t.Errorf("video answer lacks %q:\n%s", want, codecs(video))
		}
	}
	for _, bad := range []string{"packetization-mode=0", "AV1", "profile-id=2", "64001f"} {
		if strings.Contains(codecs(video), bad) {
			t.Errorf("video answer accepts %s:\n%s", bad, codecs(video))
		}
	}
	for _, want := range []string{"96 nack", "96 nack pli", "96 ccm fir", "96 transport-cc"} {
		if !strings.Contains(attrs(video, "rtcp-fb"), want) {
			t.Errorf("video answer lacks feedback %q:\n%s", want, attrs(video, "rtcp-fb"))
		}
	}
	for _, want := range []string{"1 urn:ietf:params:rtp-hdrext:ssrc-audio-level", "4 urn:ietf:params:rtp-hdrext:sdes:mid"} {
		if !strings.Contains(attrs(audio, "extmap"), want) {
			t.Errorf("audio answer lacks extension %q:\n%s", want, attrs(audio, "extmap"))
		}
	}
	for _, want := range []string{"10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
		"11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id", "13 urn:3gpp:video-orientation",
		"3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"} {
		if !strings.Contains(attrs(video, "extmap"), want) {
			t.Errorf("video answer lacks extension %q:\n%s", want, attrs(video, "extmap"))
		}
	}
	if got := attrs(video, "simulcast"); got != "recv q;h;f" {
		t.Errorf("simulcast answer = %q, want recv q;h;f", got)
	}

	// Candidates: only the shared UDP port and the ICE-TCP port, on loopback.
	<-webrtc.GatheringCompletePromise(tr.pc)
	eventually(t, "both candidates handed out", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(cands) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	for _, c := range cands {
		f := strings.Fields(c.Candidate)
		if len(f) < 8 || f[4] != "127.0.0.1" || f[7] != "host" {
			t.Errorf("unexpected candidate %q", c.Candidate)
			continue
		}
		switch strings.ToLower(f[2]) {
		case "udp":
			if f[5] != strconv.Itoa(e.UDPPort()) {
				t.Errorf("UDP candidate on port %s, want the shared port %d", f[5], e.UDPPort())
			}
		case "tcp":
			if f[5] != strconv.Itoa(e.TCPPort()) {
				t.Errorf("TCP candidate on port %s, want %d", f[5], e.TCPPort())
			}
		}
	}
}

// gatherCandidates answers the Chrome offer on a new publisher transport and returns the
// candidates the SFU trickles.
func gatherCandidates(t *testing.T, e *Engine) []string {
	t.Helper()
	var mu sync.Mutex
	var cands []string
	tr, err := e.NewTransport(PublisherRole, TransportHandlers{OnICECandidate: func(c webrtc.ICECandidateInit) {
		mu.Lock()
		cands = append(cands, c.Candidate)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tr.Close() }()
	if _, err := tr.Answer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: strings.ReplaceAll(chromeOffer, "\n", "\r\n")}, nil); err != nil {
		t.Fatal(err)
	}
	<-webrtc.GatheringCompletePromise(tr.pc)
	eventually(t, "a candidate", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(cands) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	return append([]string(nil), cands...)
}

func TestPublicIPsReplaceHostCandidates(t *testing.T) {
	e, err := NewEngine(Config{UDPAddr: "127.0.0.1:0", LoopbackOnly: true, PublicIPs: []string{"203.0.113.7"}, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close() }()
	for _, c := range gatherCandidates(t, e) {
		f := strings.Fields(c)
		if len(f) < 8 || f[4] != "203.0.113.7" || f[5] != strconv.Itoa(e.UDPPort()) {
			t.Errorf("candidate %q, want 203.0.113.7 on the shared port %d", c, e.UDPPort())
		}
	}
}

func TestEngineConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{UDPAddr: "127.0.0.1:notaport"},
		{UDPAddr: "127.0.0.1:0", TCPAddr: "nowhere:-1"},
		{UDPAddr: "127.0.0.1:0", PublicIPs: []string{"hemicycle.example"}},
	} {
		cfg.Logger = discardLogger()
		if e, err := NewEngine(cfg); err == nil {
			_ = e.Close()
			t.Errorf("NewEngine(%+v) succeeded", cfg)
		}
	}
	e := newTestEngine(t, false)
	if e.TCPPort() != 0 {
		t.Errorf("TCPPort = %d with ICE-TCP disabled", e.TCPPort())
	}
	if _, err := e.NewTransport(Role(0), TransportHandlers{}); err == nil {
		t.Error("a transport without a role was created")
	}
	pubT, err := e.NewTransport(PublisherRole, TransportHandlers{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pubT.Offer(false); err == nil {
		t.Error("a publisher transport made an offer")
	}
	if _, err := pubT.Subscribe(nil, "a", "b"); err == nil {
		t.Error("a publisher transport took a subscription")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	<-pubT.Done()
	if _, err := e.NewTransport(SubscriberRole, TransportHandlers{}); err == nil {
		t.Error("a closed engine created a transport")
	}
}

func TestSubscriberOffer(t *testing.T) {
	e := newTestEngine(t, false)
	defer func() { _ = e.Close() }()
	sub, err := e.NewTransport(SubscriberRole, TransportHandlers{})
	if err != nil {
		t.Fatal(err)
	}
	mic, _ := testTrack(t, redCodec, webrtc.RTPCodecTypeAudio, nil, nil, "")
	h264 := webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		PayloadType: 106,
	}
	cam, _ := testTrack(t, h264, webrtc.RTPCodecTypeVideo, nil, nil, "q", "h", "f")
	if _, err := sub.Subscribe(mic, "TR_mic", "PA_x|TR_mic"); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Subscribe(cam, "TR_cam", "PA_x|TR_cam"); err != nil {
		t.Fatal(err)
	}
	offer, err := sub.Offer(false)
	if err != nil {
		t.Fatal(err)
	}
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(offer.SDP); err != nil {
		t.Fatal(err)
	}
	if len(parsed.MediaDescriptions) != 2 {
		t.Fatalf("offer has %d m-lines, want 2", len(parsed.MediaDescriptions))
	}
	audio, video := parsed.MediaDescriptions[0], parsed.MediaDescriptions[1]
	// The published codec comes first; the others stay for later subscriptions.
	if got := strings.Join(audio.MediaName.Formats, " "); got != "63 111" {
		t.Errorf("audio formats %q, want RED first then Opus", got)
	}
	if got := video.MediaName.Formats; len(got) == 0 || got[0] != "106" {
		t.Errorf("video formats %v, want the published H.264 profile (106) first", got)
	}
	attrs := func(m *sdp.MediaDescription, key string) string {
		var out []string
		for _, a := range m.Attributes {
			if a.Key == key {
				out = append(out, a.Value)
			}
		}
		return strings.Join(out, "\n")
	}
	for _, want := range []string{"106 nack", "106 nack pli", "106 ccm fir", "106 goog-remb", "96 nack pli"} {
		if !strings.Contains(attrs(video, "rtcp-fb")+"\n", want+"\n") {
			t.Errorf("video offer lacks rtcp-fb %q:\n%s", want, attrs(video, "rtcp-fb"))
		}
	}
	if strings.Contains(attrs(video, "rtpmap"), "rtx") {
		t.Errorf("video offer includes RTX; retransmissions go on the media SSRC")
	}
	if !strings.Contains(attrs(audio, "extmap"), uriAudioLevel) {
		t.Errorf("audio offer lacks the audio level extension")
	}
	if got := attrs(video, "msid"); got != "PA_x|TR_cam TR_cam" {
		t.Errorf("video msid %q, want the ids given to Subscribe", got)
	}
}

// A wildcard address gets one socket per local address, so that every candidate answers from
// the address the client checked; all share one port.
func TestWildcardAddressListensOnEachLocalAddress(t *testing.T) {
	e, err := NewEngine(Config{UDPAddr: "0.0.0.0:0", Loopback: true, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close() }()
	bound := map[string]bool{}
	for _, c := range e.udpConns {
		a := c.LocalAddr().(*net.UDPAddr)
		if a.IP.IsUnspecified() || a.IP.To4() == nil {
			t.Errorf("socket bound to %s, want one IPv4 address per socket", a)
		}
		if a.Port != e.UDPPort() {
			t.Errorf("socket %s not on the shared port %d", a, e.UDPPort())
		}
		bound[a.IP.String()] = true
	}
	if !bound["127.0.0.1"] {
		t.Errorf("no socket on 127.0.0.1 although loopback candidates were asked for: %v", bound)
	}
	// The candidates are handed out one by one after gathering: wait for one per socket.
	var mu sync.Mutex
	var udp []string
	tr, err := e.NewTransport(PublisherRole, TransportHandlers{OnICECandidate: func(c webrtc.ICECandidateInit) {
		if f := strings.Fields(c.Candidate); len(f) >= 8 && strings.ToLower(f[2]) == "udp" {
			mu.Lock()
			udp = append(udp, c.Candidate)
			mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tr.Close() }()
	if _, err := tr.Answer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: strings.ReplaceAll(chromeOffer, "\n", "\r\n")}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "one UDP candidate per socket", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(udp) >= len(bound)
	})
	mu.Lock()
	defer mu.Unlock()
	for _, c := range udp {
		f := strings.Fields(c)
		if !bound[f[4]] || f[5] != strconv.Itoa(e.UDPPort()) {
			t.Errorf("candidate %q has no socket of its own (sockets on %v, port %d)", c, bound, e.UDPPort())
		}
	}
	if len(udp) != len(bound) {
		t.Errorf("%d UDP candidates for %d sockets", len(udp), len(bound))
	}
}

// TestAnswerPrefersRED: a client that offers Opus first and RED second (as a browser's default
// order is) is answered with RED first, so that it sends redundant audio; one that offers no
// RED is answered with Opus.
func TestAnswerPrefersRED(t *testing.T) {
	e := newTestEngine(t, false)
	defer func() { _ = e.Close() }()
	for _, offerRED := range []bool{true, false} {
		client := newTestPeer(t, newClientAPI(t, clientOptions{red: offerRED, noRED: !offerRED}))
		track, err := webrtc.NewTrackLocalStaticRTP(opusCapability, "TR_mic", "PA_mic")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.pc.AddTrack(track); err != nil {
			t.Fatal(err)
		}
		tr, err := e.NewTransport(PublisherRole, TransportHandlers{})
		if err != nil {
			t.Fatal(err)
		}
		answer := answerOffer(t, client, tr)
		var first string
		for _, line := range strings.Split(answer.SDP, "\n") {
			if strings.HasPrefix(line, "a=rtpmap:") {
				first = strings.TrimSpace(strings.Fields(line)[1])
				break
			}
		}
		want := "opus/48000/2"
		if offerRED {
			want = "red/48000/2"
		}
		if !strings.EqualFold(first, want) {
			t.Errorf("offer with RED %v: the answer's first audio codec is %s, want %s", offerRED, first, want)
		}
		_ = tr.Close()
	}
}

func TestICEUfrag(t *testing.T) {
	cases := map[string]string{
		"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=ice-ufrag:dmGc\r\na=ice-pwd:x\r\n": "dmGc",
		"v=0\na=ice-ufrag:/Dvy+\n": "/Dvy+",
		"v=0\r\n":                  "",
	}
	for sdp, want := range cases {
		if got := ICEUfrag(sdp); got != want {
			t.Errorf("ICEUfrag(%q) = %q, want %q", sdp, got, want)
		}
	}
}
