package sfu

import (
	"fmt"
	"log/slog"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/logging"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// codecDef is one codec Hemicycle negotiates. Payload types follow Chrome's, so that offers and
// answers read the same in both directions.
type codecDef struct {
	kind     webrtc.RTPCodecType
	mime     string
	clock    uint32
	channels uint16
	fmtp     string
	pt       webrtc.PayloadType
	rtxPT    webrtc.PayloadType // 0: no RTX
}

// supportedCodecs lists what publishers may send and subscribers receive: Opus (with RED, RFC
// 2198), VP8, H.264 with packetization-mode=1 in the baseline, constrained baseline and main
// profiles, and VP9 profile 0.
func supportedCodecs() []codecDef {
	return []codecDef{
		{webrtc.RTPCodecTypeAudio, webrtc.MimeTypeOpus, 48000, 2, "minptime=10;useinbandfec=1", 111, 0},
		{webrtc.RTPCodecTypeAudio, "audio/red", 48000, 2, "111/111", 63, 0},
		{webrtc.RTPCodecTypeVideo, webrtc.MimeTypeVP8, 90000, 0, "", 96, 97},
		{webrtc.RTPCodecTypeVideo, webrtc.MimeTypeH264, 90000, 0,
			"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", 102, 103},
		{webrtc.RTPCodecTypeVideo, webrtc.MimeTypeH264, 90000, 0,
			"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", 106, 107},
		{webrtc.RTPCodecTypeVideo, webrtc.MimeTypeH264, 90000, 0,
			"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f", 127, 125},
		{webrtc.RTPCodecTypeVideo, webrtc.MimeTypeVP9, 90000, 0, "profile-id=0", 98, 99},
	}
}

func (c codecDef) params(feedback []webrtc.RTCPFeedback) webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: c.mime, ClockRate: c.clock, Channels: c.channels, SDPFmtpLine: c.fmtp, RTCPFeedback: feedback,
		},
		PayloadType: c.pt,
	}
}

const (
	uriAudioLevel       = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
	uriVideoOrientation = "urn:3gpp:video-orientation"
)

// newPublisherAPI builds the pion API for the client-to-SFU direction: RTX accepted (pion
// unwraps it), NACKs generated for upstream loss, receiver reports, and transport-wide
// congestion feedback so that the browser's bandwidth estimate can open its upper simulcast
// layers (REMB instead for the clients that do not do TWCC, remb.go).
// maxNacksPerPacket is how many times a missing packet is asked for: enough to cover a few
// round trips of a poor connection.
const maxNacksPerPacket = 5

func newPublisherAPI(s webrtc.SettingEngine, lf logging.LoggerFactory, log *slog.Logger, stats *statsRegistry) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	videoFB := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	for _, c := range supportedCodecs() {
		var fb []webrtc.RTCPFeedback
		if c.kind == webrtc.RTPCodecTypeVideo {
			fb = videoFB
		}
		if err := m.RegisterCodec(c.params(fb), c.kind); err != nil {
			return nil, fmt.Errorf("register publisher codec %s: %w", c.mime, err)
		}
		if c.rtxPT != 0 {
			rtx := codecDef{c.kind, webrtc.MimeTypeRTX, c.clock, 0, fmt.Sprintf("apt=%d", c.pt), c.rtxPT, 0}
			if err := m.RegisterCodec(rtx.params(nil), c.kind); err != nil {
				return nil, fmt.Errorf("register publisher rtx for %s: %w", c.mime, err)
			}
		}
	}
	if err := registerHeaderExtensions(m, []headerExtension{
		{sdp.SDESMidURI, webrtc.RTPCodecTypeAudio},
		{uriAudioLevel, webrtc.RTPCodecTypeAudio},
		{sdp.SDESMidURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESRTPStreamIDURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESRepairRTPStreamIDURI, webrtc.RTPCodecTypeVideo},
		{uriVideoOrientation, webrtc.RTPCodecTypeVideo},
	}); err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}

	reg := &interceptor.Registry{}
	reg.Add(rtcpCounterFactory{reg: stats}) // first: the others write their feedback through it
	// A packet is asked for a few times (every 100 ms), then given up: after a network cut the
	// publisher cannot resend what it sent seconds ago, and asking again and again (3,700
	// NACKs a second were seen after a 15 s cut) spends its upload just as it recovers.
	gen, err := nack.NewGeneratorInterceptor(nack.WithGeneratorLoggerFactory(lf), nack.GeneratorMaxNacksPerPacket(maxNacksPerPacket))
	if err != nil {
		return nil, fmt.Errorf("create nack generator: %w", err)
	}
	reg.Add(freshNACKsFactory{}) // before the generator: it filters what the generator writes
	reg.Add(idleUntilMediaFactory{gen})
	rr, err := report.NewReceiverInterceptor(report.WithReceiverLoggerFactory(lf))
	if err != nil {
		return nil, fmt.Errorf("create receiver reports: %w", err)
	}
	reg.Add(rr)
	if err := webrtc.ConfigureTWCCSender(m, reg); err != nil {
		return nil, fmt.Errorf("configure transport-cc feedback: %w", err)
	}
	if err := configureREMB(m, reg, log); err != nil { // for the publishers without TWCC
		return nil, fmt.Errorf("configure REMB: %w", err)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(s), webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg)), nil
}

// newSubscriberAPI builds the pion API for the SFU-to-client direction. No NACK responder: the
// DownTracks answer NACKs from the publisher's packet cache. No RTX: retransmissions go on the
// media SSRC. No interceptor at all: the Engine writes the sender reports (senderreport.go).
func newSubscriberAPI(s webrtc.SettingEngine) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	for _, c := range supportedCodecs() {
		if err := m.RegisterCodec(c.params(subscriberFeedback(c.kind)), c.kind); err != nil {
			return nil, fmt.Errorf("register subscriber codec %s: %w", c.mime, err)
		}
	}
	if err := registerHeaderExtensions(m, []headerExtension{
		{sdp.SDESMidURI, webrtc.RTPCodecTypeAudio},
		{uriAudioLevel, webrtc.RTPCodecTypeAudio},
		{sdp.SDESMidURI, webrtc.RTPCodecTypeVideo},
		{uriVideoOrientation, webrtc.RTPCodecTypeVideo},
		{sdp.TransportCCURI, webrtc.RTPCodecTypeAudio},
		{sdp.TransportCCURI, webrtc.RTPCodecTypeVideo},
	}); err != nil {
		return nil, fmt.Errorf("subscriber: %w", err)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(s), webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(&interceptor.Registry{})), nil
}

// headerExtension is an RTP header extension a direction negotiates for one kind of media.
type headerExtension struct {
	uri  string
	kind webrtc.RTPCodecType
}

func registerHeaderExtensions(m *webrtc.MediaEngine, exts []headerExtension) error {
	for _, e := range exts {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: e.uri}, e.kind); err != nil {
			return fmt.Errorf("register header extension %s: %w", e.uri, err)
		}
	}
	return nil
}

// subscriberFeedback is the RTCP feedback offered to subscribers: NACK, PLI and FIR for video,
// which the DownTracks serve, REMB, which browsers send as a bandwidth hint, and transport-wide
// congestion control feedback for every stream, from which the subscriber's estimate is made.
func subscriberFeedback(kind webrtc.RTPCodecType) []webrtc.RTCPFeedback {
	if kind != webrtc.RTPCodecTypeVideo {
		return []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}}
	}
	return []webrtc.RTCPFeedback{
		{Type: "goog-remb"}, {Type: webrtc.TypeRTCPFBTransportCC}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"},
	}
}

// codecPreferences orders the subscriber codecs of the published track's kind: the published
// codec and profile first, then its other profiles, then the other codecs. Every codec of the
// kind stays in the list so that later offers on the same connection can still carry them:
// pion only offers codecs negotiated before.
func codecPreferences(src webrtc.RTPCodecParameters, kind webrtc.RTPCodecType) []webrtc.RTPCodecParameters {
	var ranked [3][]webrtc.RTPCodecParameters
	srcKind := codecKindOf(src.MimeType)
	for _, c := range supportedCodecs() {
		if c.kind != kind {
			continue
		}
		// pion keeps only the feedback present both here and in the registration.
		p := c.params(subscriberFeedback(kind))
		rank := 2
		if codecKindOf(c.mime) == srcKind {
			rank = 1
			if sameProfile(srcKind, src.SDPFmtpLine, c.fmtp) {
				rank = 0
			}
		}
		ranked[rank] = append(ranked[rank], p)
	}
	return append(append(ranked[0], ranked[1]...), ranked[2]...)
}
