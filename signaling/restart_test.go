package signaling

import (
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/ingeco/hemicycle/sfu"
)

// Candidates as Chromium trickles them after an ICE restart: its loopback address at once, its
// network's later; pion's carry no fragment.
func TestRestartCandidateGeneration(t *testing.T) {
	frag := "SX9D"
	cases := []struct {
		name     string
		c        webrtc.ICECandidateInit
		ufrag    string
		loopback bool
	}{
		{"chromium loopback", webrtc.ICECandidateInit{Candidate: "candidate:137951212 1 udp 2122260223 127.0.0.1 38643 typ host generation 1 ufrag SX9D network-id 2 network-cost 50"}, "SX9D", true},
		{"chromium network", webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2122194687 10.213.44.202 50511 typ host generation 1 ufrag SX9D network-id 3", UsernameFragment: &frag}, "SX9D", false},
		{"mdns host", webrtc.ICECandidateInit{Candidate: "candidate:2 1 udp 2122194687 4b1c0c8e-1f2a.local 50511 typ host generation 0 ufrag ab12"}, "ab12", false},
		{"pion", webrtc.ICECandidateInit{Candidate: "candidate:3 1 udp 2130706431 192.0.2.7 40000 typ host"}, "", false},
		{"ipv6 loopback", webrtc.ICECandidateInit{Candidate: "candidate:4 1 udp 2130706431 ::1 40000 typ host"}, "", true},
		{"end of candidates", webrtc.ICECandidateInit{}, "", false},
	}
	for _, c := range cases {
		if got := sfu.CandidateUfrag(c.c); got != c.ufrag {
			t.Errorf("%s: ufrag %q, want %q", c.name, got, c.ufrag)
		}
		if got := candidateOnLoopback(c.c); got != c.loopback {
			t.Errorf("%s: loopback %v, want %v", c.name, got, c.loopback)
		}
	}
}
