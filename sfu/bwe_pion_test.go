package sfu

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// BenchmarkGCCOnSent is what pion's send-side estimator (interceptor/pkg/gcc, with its no-op
// pacer) costs per packet sent, for comparison with BenchmarkBWEOnSent: the reason the
// subscriber connections use an estimator of their own (bwe.go).
func BenchmarkGCCOnSent(b *testing.B) {
	e, err := gcc.NewSendSideBWE(gcc.SendSideBWEPacer(gcc.NewNoOpPacer()), gcc.WithLoggerFactory(pionLoggerFactory{log: discardLogger()}))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = e.Close() }()
	info := &interceptor.StreamInfo{SSRC: 4242, RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: 5}}}
	w := e.AddStream(info, interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) {
		return 12 + len(p), nil
	}))
	payload := make([]byte, 1200)
	var ext [2]byte
	h := rtp.Header{Version: 2, PayloadType: 96, SSRC: 4242, Extensions: make([]rtp.Extension, 0, 1)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.SequenceNumber = uint16(i)
		h.Extension, h.Extensions = false, h.Extensions[:0]
		_ = h.SetExtension(5, putTWCC(&ext, uint16(i)))
		if _, err := w.Write(&h, payload, nil); err != nil {
			b.Fatal(err)
		}
	}
}
