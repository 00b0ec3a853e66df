package media

import (
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
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
