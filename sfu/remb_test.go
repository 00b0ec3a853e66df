package sfu

import (
	"encoding/binary"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/test/media"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// newCameraClientAPI is a publishing client that sends VP8 only, stamped with abs-send-time and
// offering goog-remb, like the older browsers; with twcc it also numbers its packets for
// transport-wide feedback, as current browsers do besides.
func newCameraClientAPI(t *testing.T, twcc bool) *webrtc.API {
	t.Helper()
	m, reg, err := media.REMBCamera(twcc)
	if err != nil {
		t.Fatal(err)
	}
	s := webrtc.SettingEngine{LoggerFactory: pionLoggerFactory{log: discardLogger()}}
	s.SetIncludeLoopbackCandidate(true)
	s.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(s), webrtc.WithInterceptorRegistry(reg))
}

// feedbackSeen is what a publisher read of the SFU's RTCP.
type feedbackSeen struct {
	remb *rtcp.ReceiverEstimatedMaximumBitrate
	twcc bool
}

// sendCamera publishes a VP8 track from a client of the given kind, sends it at about
// 1.6 Mbit/s until the test ends, and passes on what the SFU's RTCP says.
func sendCamera(t *testing.T, e *Engine, twcc bool) (answer string, ssrc uint32, seen <-chan feedbackSeen) {
	t.Helper()
	client := newTestPeer(t, newCameraClientAPI(t, twcc))
	track, err := webrtc.NewTrackLocalStaticRTP(vp8Capability, "camera", "member")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := client.pc.AddTrack(track)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, e, client, TransportHandlers{})
	ssrc = uint32(sender.GetParameters().Encodings[0].SSRC)

	stop := make(chan struct{})
	sent := make(chan struct{})
	t.Cleanup(func() { close(stop); <-sent })
	go func() {
		defer close(sent)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var sn uint16
		for frame := 0; ; frame++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for i := range 4 { // a frame of four packets of 1,000 bytes, 50 a second
				payload := make([]byte, 1000)
				copy(payload, vp8Frame(frame%50 == 0 && i == 0, byte(sn)))
				pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: sn, Timestamp: uint32(frame) * 1800, Marker: i == 3}, Payload: payload}
				sn++
				if err := track.WriteRTP(pkt); err != nil {
					return
				}
			}
		}
	}()

	out := make(chan feedbackSeen, 256)
	go func() { // ends when the client's connection closes, at the test's end
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				var f feedbackSeen
				switch p := p.(type) {
				case *rtcp.ReceiverEstimatedMaximumBitrate:
					f.remb = p
				case *rtcp.TransportLayerCC:
					f.twcc = true
				default:
					continue
				}
				select {
				case out <- f:
				default:
				}
			}
		}
	}()
	return client.pc.RemoteDescription().SDP, ssrc, out
}

// TestREMBToPublishersWithoutTWCC: a publisher that offers goog-remb and abs-send-time but not
// transport-cc has them in the SFU's answer and receives REMB naming its stream, with an
// estimate that follows what it sends on a loopback that limits nothing; a publisher that also
// does TWCC receives TWCC feedback and no REMB.
func TestREMBToPublishersWithoutTWCC(t *testing.T) {
	e := newTestEngine(t, false)
	t.Cleanup(func() { _ = e.Close() })

	t.Run("remb", func(t *testing.T) {
		answer, ssrc, seen := sendCamera(t, e, false)
		for _, want := range []string{"a=rtcp-fb:96 goog-remb", sdp.ABSSendTimeURI} {
			if !strings.Contains(answer, want) {
				t.Errorf("the answer lacks %q:\n%s", want, answer)
			}
		}
		if strings.Contains(answer, "transport-cc") || strings.Contains(answer, sdp.TransportCCURI) {
			t.Errorf("the answer has TWCC for a publisher that did not offer it:\n%s", answer)
		}
		deadline := time.After(waitLimit)
		var got []float32
		for {
			select {
			case f := <-seen:
				if f.twcc {
					t.Fatal("TWCC feedback to a publisher that did not negotiate it")
				}
				if !slices.Contains(f.remb.SSRCs, ssrc) || f.remb.Bitrate <= 0 {
					t.Fatalf("REMB %v, want a positive bitrate for the publisher's SSRC %d", f.remb, ssrc)
				}
				got = append(got, f.remb.Bitrate)
				if f.remb.Bitrate >= 1_000_000 { // ~1.6 Mbit/s sent; the first estimate is 600 kbit/s
					t.Logf("REMB received (bit/s): %v", got)
					return
				}
			case <-deadline:
				t.Fatalf("no REMB of 1 Mbit/s or more within %v while about 1.6 Mbit/s was sent; received %v", waitLimit, got)
			}
		}
	})

	t.Run("twcc", func(t *testing.T) {
		answer, _, seen := sendCamera(t, e, true)
		if !strings.Contains(answer, "transport-cc") {
			t.Fatalf("the answer lacks transport-cc:\n%s", answer)
		}
		deadline := time.After(waitLimit)
		var quiet <-chan time.Time // runs from the first TWCC feedback
		twcc := 0
		for {
			select {
			case f := <-seen:
				if f.remb != nil {
					t.Fatalf("REMB %v to a publisher that does TWCC", f.remb)
				}
				twcc++
				if quiet == nil {
					quiet = time.After(3 * rembInterval)
				}
			case <-quiet:
				t.Logf("%d TWCC feedback packets and no REMB over %v", twcc, 3*rembInterval)
				return
			case <-deadline:
				t.Fatalf("no TWCC feedback within %v", waitLimit)
			}
		}
	})
}

// TestREMBStreamsMeasured: a stream is measured when it carries abs-send-time and not the TWCC
// extension, and named in the REMB when its sender asked for REMB.
func TestREMBStreamsMeasured(t *testing.T) {
	ast := interceptor.RTPHeaderExtension{URI: sdp.ABSSendTimeURI, ID: 2}
	tcc := interceptor.RTPHeaderExtension{URI: sdp.TransportCCURI, ID: 3}
	remb := []interceptor.RTCPFeedback{{Type: "nack"}, {Type: webrtc.TypeRTCPFBGoogREMB}}
	for _, c := range []struct {
		what            string
		info            interceptor.StreamInfo
		measured, named bool
	}{
		{"video asking for REMB", interceptor.StreamInfo{MimeType: webrtc.MimeTypeVP8, RTPHeaderExtensions: []interceptor.RTPHeaderExtension{ast}, RTCPFeedback: remb}, true, true},
		{"its retransmissions", interceptor.StreamInfo{MimeType: webrtc.MimeTypeRTX, RTPHeaderExtensions: []interceptor.RTPHeaderExtension{ast}}, true, false},
		{"audio beside it", interceptor.StreamInfo{MimeType: webrtc.MimeTypeOpus, RTPHeaderExtensions: []interceptor.RTPHeaderExtension{ast}}, true, false},
		{"video that also does TWCC", interceptor.StreamInfo{MimeType: webrtc.MimeTypeVP8, RTPHeaderExtensions: []interceptor.RTPHeaderExtension{ast, tcc}, RTCPFeedback: remb}, false, false},
		{"video without abs-send-time", interceptor.StreamInfo{MimeType: webrtc.MimeTypeVP8, RTCPFeedback: remb}, false, false},
	} {
		st, measured := rembStreamOf(&c.info)
		if measured != c.measured || (measured && st.named != c.named) {
			t.Errorf("%s: measured %v, named %v; want %v, %v", c.what, measured, measured && st.named, c.measured, c.named)
		}
	}
}

// TestREMBLossAndCuts: the packets a sequence gap skips count as lost, unless they would have
// been sent over more than outageRun, a cut of the link rather than a queue that overflowed.
func TestREMBLossAndCuts(t *testing.T) {
	r := newREMBEstimator(discardLogger(), time.Unix(0, 0))
	st, _ := rembStreamOf(&interceptor.StreamInfo{SSRC: 1000, MimeType: webrtc.MimeTypeVP8,
		RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.ABSSendTimeURI, ID: 2}}})
	send := func(sn uint16, at time.Duration) {
		t.Helper()
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1000, SequenceNumber: sn}, Payload: make([]byte, 100)}
		ast, err := rtp.NewAbsSendTimeExtension(time.Unix(0, 0).Add(at)).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := pkt.Header.SetExtension(2, ast); err != nil {
			t.Fatal(err)
		}
		raw, err := pkt.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r.observe(st, raw, int64(time.Second+at)) // 1 s of one-way delay, whatever it is
	}
	send(1, 0)
	send(2, 10*time.Millisecond)
	send(6, 50*time.Millisecond)    // 3 lost within 40 ms: a queue overflowing
	send(50, 2050*time.Millisecond) // 43 skipped over 2 s: a cut
	send(51, 2060*time.Millisecond)
	if b := r.batch.s; b.received != 5 || b.lost != 3 || b.sent != 8 {
		t.Errorf("received %d, lost %d, sent %d; want 5, 3 and 8", b.received, b.lost, b.sent)
	}
	if least, mean := r.batch.owdMin, r.batch.owdSum/int64(r.batch.owdCount); mean-least > 4 { // abs-send-time's step is 3.8 µs
		t.Errorf("one-way delays: least %d µs, mean %d µs; want the same constant", least, mean)
	}
}

// TestREMBSendTimeUnwrap: abs-send-time wraps every 64 s; the sender's clock is unwrapped across
// the wrap, for a packet that overtook another, and after a silence longer than a wrap.
func TestREMBSendTimeUnwrap(t *testing.T) {
	r := newREMBEstimator(discardLogger(), time.Unix(0, 0))
	const tick = int64(time.Second) >> 18 // nanoseconds per 1/2^18 s, rounded down
	now := int64(1_000_000_000)
	at := func(ticks int64) uint32 { return uint32(ticks) & 0xffffff }
	start := int64(0xffffff - 1000) // just before a wrap
	steps := []struct {
		what    string
		ticks   int64 // the sender's unwrapped clock
		elapsed int64 // nanoseconds since the previous packet, on ours
	}{
		{"first", start, 0},
		{"across the wrap", start + 5000, 5000 * tick},
		{"overtaken", start + 4000, 1000 * tick},
		{"after 100 s of silence", start + 5000 + 100<<18, 100 * int64(time.Second)},
		{"after 200 s more", start + 5000 + 300<<18, 200 * int64(time.Second)},
	}
	for _, s := range steps {
		now += s.elapsed
		if got := r.unwrapSendTime(at(s.ticks), now); got != s.ticks {
			t.Errorf("%s: unwrapped %d, want %d", s.what, got, s.ticks)
		}
	}
}

// BenchmarkREMBPacket is the per-packet cost of measuring a REMB publisher's stream: the read
// through the estimator's reader, its header parse, clock and loss accounting.
func BenchmarkREMBPacket(b *testing.B) {
	r := newREMBEstimator(discardLogger(), time.Now())
	defer func() { _ = r.Close() }()
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1000}, Payload: make([]byte, 1200)}
	if err := pkt.Header.SetExtension(2, []byte{0, 0, 0}); err != nil {
		b.Fatal(err)
	}
	raw, err := pkt.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	const extAt = 12 + 4 + 1 // fixed header, one-byte extension header, element header
	src := interceptor.RTPReaderFunc(func(buf []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		return copy(buf, raw), a, nil
	})
	info := &interceptor.StreamInfo{SSRC: 1000, MimeType: webrtc.MimeTypeVP8,
		RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.ABSSendTimeURI, ID: 2}},
		RTCPFeedback:        []interceptor.RTCPFeedback{{Type: webrtc.TypeRTCPFBGoogREMB}}}
	reader := r.BindRemoteStream(info, src)
	buf := make([]byte, maxPacketSize)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		binary.BigEndian.PutUint16(raw[2:], uint16(i))
		ast := uint32(i*4) & 0xffffff // 15 µs apart
		raw[extAt], raw[extAt+1], raw[extAt+2] = byte(ast>>16), byte(ast>>8), byte(ast)
		if _, _, err := reader.Read(buf, nil); err != nil {
			b.Fatal(err)
		}
	}
	cpu = processCPU() - cpu
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/packet")
}
