package weaklinks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/ingeco/hemicycle/sfu"
	"github.com/ingeco/hemicycle/test/media"
	"github.com/ingeco/hemicycle/test/netlab"
)

// The REMB test's publisher is a plain pion client, not the LiveKit SDK (which always
// negotiates TWCC), connected straight to the media engine: what is under test is the REMB the
// engine sends, which no signalling message takes part in.

const (
	rembSendRate = 2_500_000 // bit/s, the publisher's fixed rate
	rembLine     = 1000      // kbit/s, its uplink while shaped
	rembWithin   = 10 * time.Second
)

// rembReport is what the publisher child reports: each REMB it reads, and every half second
// how much it sent.
type rembReport struct {
	Bitrate float64 // bit/s of the REMB; 0 in the half-second reports
	SSRCs   []uint32
	SSRC    uint32 // the publisher's own
	Sent    int64  // bytes of RTP sent so far
}

// TestREMBOnAWeakUplink: a publisher that does not do TWCC but offers REMB and abs-send-time
// sends 2.5 Mbit/s of video without ever adapting. Through a free link the server's REMB shows
// the rate passing (at least 2 Mbit/s); once the uplink is shaped to 1 Mbit/s, the REMB falls
// within 10 s below 1.1 Mbit/s and stays above 300 kbit/s (it estimates the line, not zero);
// once the limit is lifted it rises again to 2 Mbit/s or more within 10 s.
func TestREMBOnAWeakUplink(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	link := netlab.New(t)
	offerURL := startREMBEngine(t, link.HostIP.String())
	pub := netlab.Child(ctx, t, link, "remb-publisher", map[string]string{"OFFER_URL": offerURL})
	begin := time.Now()
	var timeline []string // for BENCHMARKS.md
	var last rembReport
	next := func() rembReport {
		t.Helper()
		var r rembReport
		if err := pub.Next(ctx, &r); err != nil {
			t.Fatal(err)
		}
		last = r
		if r.Bitrate > 0 {
			if !slices.Contains(r.SSRCs, r.SSRC) {
				t.Fatalf("REMB for %v, not for the publisher's stream %d", r.SSRCs, r.SSRC)
			}
			timeline = append(timeline, fmt.Sprintf("%.1fs %.0f", time.Since(begin).Seconds(), r.Bitrate/1000))
		}
		return r
	}
	defer func() {
		t.Logf("REMB over time (s, kbit/s): %s", strings.Join(timeline, ", "))
		t.Logf("the publisher sent %.0f kbit/s of RTP on average", float64(last.Sent)*8/time.Since(begin).Seconds()/1000)
	}()
	// await reads REMBs until one satisfies ok, for at most rembWithin.
	await := func(what string, ok func(float64) bool) {
		t.Helper()
		from := time.Now()
		for time.Since(from) < rembWithin {
			if r := next(); r.Bitrate != 0 && ok(r.Bitrate) {
				t.Logf("%s after %v: %.0f kbit/s", what, time.Since(from).Round(100*time.Millisecond), r.Bitrate/1000)
				return
			}
		}
		t.Fatalf("no REMB %s within %v", what, rembWithin)
	}

	await("of 2 Mbit/s or more on the free link", func(b float64) bool { return b >= 2_000_000 })
	for free := time.Now(); time.Since(free) < 3*time.Second; {
		next()
	}

	if err := link.Shape(netlab.FromPeer, rembLine); err != nil {
		t.Fatal(err)
	}
	timeline = append(timeline, fmt.Sprintf("[%.1fs shaped to %d]", time.Since(begin).Seconds(), rembLine))
	await(fmt.Sprintf("below 1.1 Mbit/s on a %d kbit/s uplink", rembLine), func(b float64) bool { return b < 1_100_000 })
	// While the line stays shaped the estimate stays on it: neither back up nor down to nothing.
	hold := time.Now()
	for time.Since(hold) < 5*time.Second {
		if b := next().Bitrate; b != 0 && (b >= 1_100_000 || b <= 300_000) {
			t.Errorf("REMB of %.0f kbit/s on a %d kbit/s uplink, want 300 to 1,100", b/1000, rembLine)
		}
	}

	if err := link.Unshape(netlab.FromPeer); err != nil {
		t.Fatal(err)
	}
	timeline = append(timeline, fmt.Sprintf("[%.1fs limit lifted]", time.Since(begin).Seconds()))
	await("of 2 Mbit/s or more once the limit is lifted", func(b float64) bool { return b >= 2_000_000 })
}

// startREMBEngine runs the media engine on the host's end of the link, and a tiny HTTP endpoint
// beside it through which the publisher posts its offer (with its candidates) and gets the
// answer and the engine's candidates. WEAKLINKS_LOG=file writes the engine's debug log (the
// REMB decisions) there.
func startREMBEngine(t *testing.T, ip string) (offerURL string) {
	t.Helper()
	engine, err := sfu.NewEngine(sfu.Config{UDPAddr: net.JoinHostPort(ip, "0"), Logger: serverLog(t)})
	if err != nil {
		t.Fatalf("media engine: %v", err)
	}
	var mu sync.Mutex
	var transports []*sfu.Transport
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var offer webrtc.SessionDescription
		if err := json.NewDecoder(r.Body).Decode(&offer); err != nil {
			http.Error(w, "offer: "+err.Error(), http.StatusBadRequest)
			return
		}
		candidates := make(chan webrtc.ICECandidateInit, 8)
		tr, err := engine.NewTransport(sfu.PublisherRole, sfu.TransportHandlers{
			OnICECandidate: func(c webrtc.ICECandidateInit) { candidates <- c },
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		mu.Lock()
		transports = append(transports, tr)
		mu.Unlock()
		answer, err := tr.Answer(offer, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reply := rembAnswer{Answer: answer}
		// One UDP socket on one address: one host candidate, and a moment for any other.
		select {
		case c := <-candidates:
			reply.Candidates = append(reply.Candidates, c)
		case <-time.After(5 * time.Second):
			http.Error(w, "the engine gathered no candidate within 5 s", http.StatusInternalServerError)
			return
		}
		for more := time.After(200 * time.Millisecond); ; {
			select {
			case c := <-candidates:
				reply.Candidates = append(reply.Candidates, c)
				continue
			case <-more:
			}
			break
		}
		_ = json.NewEncoder(w).Encode(reply)
	})
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(handler)
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() {
		hs.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, tr := range transports {
			_ = tr.Close()
		}
		_ = engine.Close()
	})
	return hs.URL + "/offer"
}

type rembAnswer struct {
	Answer     webrtc.SessionDescription
	Candidates []webrtc.ICECandidateInit
}

// rembPublisher runs in the namespace: a pion client offering VP8 with goog-remb and
// abs-send-time and no TWCC, which sends 2.5 Mbit/s whatever it is told, and reports each REMB.
var rembPublisher netlab.Role = func(ctx context.Context, t testing.TB, report func(any)) {
	ctx, cancel := context.WithCancel(ctx) // ends the reporting goroutine with the role
	defer cancel()
	m, reg, err := media.REMBCamera(false)
	if err != nil {
		t.Fatal(err)
	}
	var s webrtc.SettingEngine
	s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(s), webrtc.WithInterceptorRegistry(reg)).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pc.Close() }()
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "camera", "member")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	body, err := json.Marshal(pc.LocalDescription())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(os.Getenv("OFFER_URL"), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("post the offer: %v", err)
	}
	var reply rembAnswer
	err = json.NewDecoder(resp.Body).Decode(&reply)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("answer: %s, %v", resp.Status, err)
	}
	if err := pc.SetRemoteDescription(reply.Answer); err != nil {
		t.Fatal(err)
	}
	for _, c := range reply.Candidates {
		if err := pc.AddICECandidate(c); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-connected:
	case <-time.After(15 * time.Second):
		t.Fatal("not connected within 15 s")
	case <-ctx.Done():
		return
	}
	ssrc := uint32(sender.GetParameters().Encodings[0].SSRC)

	var mu sync.Mutex
	var sent int64
	go func() { // ends when pc closes
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if remb, ok := p.(*rtcp.ReceiverEstimatedMaximumBitrate); ok {
					mu.Lock()
					n := sent
					mu.Unlock()
					report(rembReport{Bitrate: float64(remb.Bitrate), SSRCs: remb.SSRCs, SSRC: ssrc, Sent: n})
				}
			}
		}
	}()
	// Half-second reports, so that the parent's deadlines hold without REMB.
	go netlab.Every(ctx, 500*time.Millisecond, func() {
		mu.Lock()
		n := sent
		mu.Unlock()
		report(rembReport{SSRC: ssrc, Sent: n})
	})

	// A frame of six packets of 1,000 bytes every 20 ms: 2.4 Mbit/s of payload, 2.5 with the
	// headers, a keyframe every 2 s.
	const perFrame, size = 6, 1000
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var sn uint16
	payload := make([]byte, size)
	for frame := uint32(0); ; frame++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for i := range perFrame {
			clear(payload)
			copy(payload, vp8Descriptor(frame%100 == 0 && i == 0))
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: sn, Timestamp: frame * 1800, Marker: i == perFrame-1}, Payload: payload}
			sn++
			if err := track.WriteRTP(pkt); err != nil {
				return
			}
			mu.Lock()
			sent += int64(12 + size)
			mu.Unlock()
		}
	}
}

// vp8Descriptor starts a VP8 packet: a payload descriptor with S set, then the frame header of
// a key frame or an interframe.
func vp8Descriptor(key bool) []byte {
	if key {
		return []byte{0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}
	}
	return []byte{0x10, 0x11, 0x02, 0x00}
}
