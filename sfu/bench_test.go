package sfu

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// discardWriter is a subscriber connection that drops everything, so the benchmark measures the
// SFU's own work per forwarded packet, not SRTP or the kernel.
type discardWriter struct{}

func (discardWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	return 12 + len(payload), nil
}
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkFanout sends one published video packet (1,200 bytes, audio-level-free) to N
// DownTracks through the real path: header parse, packet cache, fan-out, layer choice, sequence
// and timestamp rewrite, sequencer, header rebuild, write.
//
// With twcc, each subscriber negotiated transport-cc: every copy also carries a transport-wide
// sequence number and its send time and size are recorded for the subscriber's estimate.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		for _, twcc := range []bool{false, true} {
			name := fmt.Sprintf("subscribers=%d", n)
			if twcc {
				name += "/twcc"
			}
			b.Run(name, func(b *testing.B) { benchmarkFanout(b, n, twcc) })
		}
	}
}

func benchmarkFanout(b *testing.B, n int, twcc bool) {
	{
		{
			p, layers := testTrack(b, vp8Codec, webrtc.RTPCodecTypeVideo, nil, nil, "")
			var exts []webrtc.RTPHeaderExtensionParameter
			if twcc {
				exts = []webrtc.RTPHeaderExtensionParameter{{URI: sdp.TransportCCURI, ID: 5}}
			}
			for i := 0; i < n; i++ {
				d := bindDownTrack(b, p, discardWriter{}, []webrtc.RTPCodecParameters{vp8Codec}, exts)
				if twcc {
					d.link = &downlink{bwe: newBWE(time.Now())}
				}
			}
			payload := make([]byte, 1200)
			copy(payload, vp8Frame(true, 0))
			raw := rawPacket(b, 96, 0, 0, layers[0].ssrc, false, payload)
			pkt := &inPacket{}
			now := time.Now().UnixNano()
			p.handle(layers[0], pkt, raw, now) // the keyframe every DownTrack starts on
			raw[12] = 0x10
			raw[13] = 0x11 // the following packets are delta frames

			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			for i := 0; i < b.N; i++ {
				sn := uint16(i + 1)
				binary.BigEndian.PutUint16(raw[2:], sn)
				binary.BigEndian.PutUint32(raw[4:], uint32(sn/4)*3000)
				p.handle(layers[0], pkt, raw, now)
			}
			cpu = processCPU() - cpu
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/forward")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/forward")
			for _, d := range *p.downTracks.Load() {
				if pk, _ := d.Stats(); pk != uint64(b.N)+1 {
					b.Fatalf("a DownTrack forwarded %d packets, want %d", pk, b.N+1)
				}
			}
		}
	}
}

// BenchmarkFanoutAudioRED is the audio case: Opus with RED and an audio level, to subscribers
// half of which need RED stripped.
func BenchmarkFanoutAudioRED(b *testing.B) {
	exts := []webrtc.RTPHeaderExtensionParameter{{URI: uriAudioLevel, ID: 1}}
	p, layers := testTrack(b, redCodec, webrtc.RTPCodecTypeAudio, exts, nil, "")
	const n = 100
	for i := 0; i < n; i++ {
		codecs := []webrtc.RTPCodecParameters{redCodec, opusCodec}
		if i%2 == 1 {
			codecs = codecs[1:]
		}
		bindDownTrack(b, p, discardWriter{}, codecs, exts)
	}
	payload := redPayload(111, make([]byte, 80), redBlock{111, 960, make([]byte, 80)})
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 63, SSRC: layers[0].ssrc}, Payload: payload}
	if err := pkt.Header.SetExtension(1, []byte{40}); err != nil {
		b.Fatal(err)
	}
	raw, err := pkt.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	in := &inPacket{}
	now := time.Now().UnixNano()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		binary.BigEndian.PutUint16(raw[2:], uint16(i))
		binary.BigEndian.PutUint32(raw[4:], uint32(i)*960)
		p.handle(layers[0], in, raw, now)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/forward")
}
