package sfu

import (
	"encoding/binary"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// BenchmarkPublisherReceive measures what pion's interceptors on the publisher connection cost
// per received packet: the transport-wide feedback (twcc: a header parse and a channel hand-off
// to its recorder goroutine for every packet) beside the NACK generator and receiver reports
// that were already there, and the filter that keeps the generator from asking for what a cut
// swallowed (freshNACKs: a lock and a clock reading per packet). The packet comes from a
// reader that only copies it, as the SRTP session would hand it over once decrypted.
func BenchmarkPublisherReceive(b *testing.B) {
	const tccID = 3
	pkt := rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 96, SSRC: 0x1234, Timestamp: 90000},
		Payload: make([]byte, 1100),
	}
	ext, err := (&rtp.TransportCCExtension{TransportSequence: 1}).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	if err := pkt.SetExtension(tccID, ext); err != nil {
		b.Fatal(err)
	}
	raw, err := pkt.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	// One-byte extension profile: 12 bytes of header, 4 of extension header, 1 of element
	// header, then the transport sequence number.
	const tccOffset = 17
	if binary.BigEndian.Uint16(raw[tccOffset:]) != 1 {
		b.Fatal("the transport sequence number is not where the benchmark writes it")
	}
	info := &interceptor.StreamInfo{
		SSRC: 0x1234, ClockRate: 90000, MimeType: "video/VP8",
		RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: tccID}},
		RTCPFeedback:        []interceptor.RTCPFeedback{{Type: "nack"}, {Type: "transport-cc"}},
	}

	type newFactory func() (interceptor.Factory, error)
	twccSender := func() (interceptor.Factory, error) { return twcc.NewSenderInterceptor() }
	nackGenerator := func() (interceptor.Factory, error) { return nack.NewGeneratorInterceptor() }
	receiverReports := func() (interceptor.Factory, error) { return report.NewReceiverInterceptor() }
	freshNACKs := func() (interceptor.Factory, error) { return freshNACKsFactory{}, nil }
	cases := []struct {
		name      string
		factories []newFactory
	}{
		{"none", nil},
		{"twcc", []newFactory{twccSender}},
		{"nack+report", []newFactory{nackGenerator, receiverReports}},
		{"nack+report+twcc", []newFactory{nackGenerator, receiverReports, twccSender}},
		// As shipped (codecs.go): the NACK filter is registered before the generator.
		{"freshnacks+nack+report+twcc", []newFactory{freshNACKs, nackGenerator, receiverReports, twccSender}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			reg := &interceptor.Registry{}
			for _, build := range c.factories {
				f, err := build()
				if err != nil {
					b.Fatal(err)
				}
				reg.Add(f)
			}
			chain, err := reg.Build("")
			if err != nil {
				b.Fatal(err)
			}
			defer chain.Close()
			chain.BindRTCPWriter(interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, _ interceptor.Attributes) (int, error) {
				return 0, nil
			}))
			var seq uint16
			src := interceptor.RTPReaderFunc(func(buf []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
				n := copy(buf, raw)
				seq++
				binary.BigEndian.PutUint16(buf[2:], seq)
				binary.BigEndian.PutUint16(buf[tccOffset:], seq)
				return n, a, nil
			})
			r := chain.BindRemoteStream(info, src)
			buf := make([]byte, 1500)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := r.Read(buf, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
