package media

import (
	"fmt"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// AbsSendTimeStamper is an interceptor for a test client's pion API: it stamps every packet
// the client sends with abs-send-time when the connection negotiated it, as browsers do and
// pion's senders do not (REMB's receiver-side estimate rests on it).
type AbsSendTimeStamper struct{ interceptor.NoOp }

// NewInterceptor makes it an interceptor.Factory.
func (AbsSendTimeStamper) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &AbsSendTimeStamper{}, nil
}

// BindLocalStream stamps the stream's packets, if it carries the extension.
func (*AbsSendTimeStamper) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == sdp.ABSSendTimeURI {
			id = uint8(e.ID)
		}
	}
	if id == 0 {
		return w
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		ext, err := rtp.NewAbsSendTimeExtension(time.Now()).Marshal()
		if err != nil {
			return 0, err
		}
		if err := h.SetExtension(id, ext); err != nil {
			return 0, err
		}
		return w.Write(h, payload, a)
	})
}

// REMBCamera is the media side of a test client that publishes VP8 as the older browsers do:
// goog-remb feedback offered and every packet stamped with abs-send-time; with twcc it also
// numbers its packets for transport-wide feedback, as current browsers do besides.
func REMBCamera(twcc bool) (*webrtc.MediaEngine, *interceptor.Registry, error) {
	m := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBGoogREMB}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	if twcc {
		fb = append(fb, webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC})
	}
	vp8 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 96}
	if err := m.RegisterCodec(vp8, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, nil, fmt.Errorf("register VP8: %w", err)
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.ABSSendTimeURI}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, nil, fmt.Errorf("register abs-send-time: %w", err)
	}
	reg := &interceptor.Registry{}
	reg.Add(AbsSendTimeStamper{})
	if twcc {
		if err := webrtc.ConfigureTWCCHeaderExtensionSender(m, reg); err != nil {
			return nil, nil, fmt.Errorf("transport-wide numbering: %w", err)
		}
	}
	return m, reg, nil
}
