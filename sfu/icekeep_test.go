package sfu

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// withICECredentials is sdp with its ICE username fragment and password replaced, as a browser's
// offer that restarts ICE carries them (the browser itself still uses its old path meanwhile).
func withICECredentials(sdp, ufrag, pwd string) string {
	sdp = strings.ReplaceAll(sdp, "a=ice-ufrag:"+ICEUfrag(sdp)+"\r\n", "a=ice-ufrag:"+ufrag+"\r\n")
	return strings.ReplaceAll(sdp, "a=ice-pwd:"+sdpAttribute(sdp, "ice-pwd")+"\r\n", "a=ice-pwd:"+pwd+"\r\n")
}

// A restart the server declines keeps the path in use: the answer carries the server's
// credentials in use, the client's packets keep arriving on the same pair, the client's later
// offers with the declined credentials are ordinary renegotiations, the declined generation's
// candidates are not given to ICE, and a restart with credentials of its own is one again.
func TestDeclinedICERestartKeepsThePath(t *testing.T) {
	e := newTestEngine(t, false)
	defer func() { _ = e.Close() }()
	pub := publishRTP(t, e, clientOptions{}, opusCapability, "mic", "stream")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go pace(ctx, 20*time.Millisecond, func(i int) error {
		return pub.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i) * 960}, Payload: []byte{0xfc, 0xff, 0xfe}})
	})
	tr := pub.transport
	start := time.Now()
	eventually(t, "the client's packets on the selected pair", func() bool { return tr.PathReceivingSince(start) })
	serverUfrag := ICEUfrag(tr.pc.CurrentLocalDescription().SDP)

	restart := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer,
		SDP: withICECredentials(pub.client.pc.LocalDescription().SDP, "rstA", "restartpasswordoftwentyfourA")}
	if ufrag, restarts := tr.RestartsICE(restart.SDP); !restarts || ufrag != "rstA" {
		t.Fatalf("RestartsICE = %q, %v; want rstA, true", ufrag, restarts)
	}
	answer, err := tr.AnswerKeepingPath(restart, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := ICEUfrag(answer.SDP); got != serverUfrag {
		t.Fatalf("the declined restart's answer carries ufrag %q, want the one in use %q", got, serverUfrag)
	}
	declined := time.Now()
	eventually(t, "packets on the same path after the declined restart", func() bool {
		return tr.Connected() && tr.PathReceivingSince(declined)
	})

	if _, restarts := tr.RestartsICE(restart.SDP); restarts {
		t.Fatal("a later offer with the declined credentials is taken for a restart")
	}
	if _, err := tr.Answer(restart, nil); err != nil {
		t.Fatalf("renegotiation with the declined credentials: %v", err)
	}
	if got := ICEUfrag(tr.pc.CurrentRemoteDescription().SDP); got != ICEUfrag(pub.client.pc.LocalDescription().SDP) {
		t.Fatalf("the server's ICE agent now knows ufrag %q, want the client's in use", got)
	}
	renegotiated := time.Now()
	eventually(t, "packets on the same path after the renegotiation", func() bool { return tr.PathReceivingSince(renegotiated) })

	ofDeclined := webrtc.ICECandidateInit{Candidate: "candidate:9 1 udp 2122260223 127.0.0.1 9 typ host generation 1 ufrag rstA"}
	if !tr.declinedGeneration(ofDeclined) {
		t.Fatal("a candidate of the declined generation would be given to ICE")
	}
	if err := tr.AddICECandidate(ofDeclined); err != nil {
		t.Fatal(err)
	}

	again := withICECredentials(pub.client.pc.LocalDescription().SDP, "rstB", "restartpasswordoftwentyfourB")
	if ufrag, restarts := tr.RestartsICE(again); !restarts || ufrag != "rstB" {
		t.Fatalf("a restart with new credentials after a declined one: RestartsICE = %q, %v", ufrag, restarts)
	}
}
