package signalingtest

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/ingeco/hemicycle/auth"
)

func TestTokenCarriesRoleSeatAndAnHour(t *testing.T) {
	tok := TestKeys.Token(t, "conseil", "c12", auth.RoleMember, 12)
	claims, err := auth.NewVerifier(TestKeys.KeySet()).VerifyForRoom(tok, "conseil")
	if err != nil {
		t.Fatal(err)
	}
	if claims.ParticipantIdentity() != "c12" || claims.Role() != auth.RoleMember || claims.Council.Seat != 12 {
		t.Errorf("claims %+v", claims)
	}
	if ttl := claims.ExpiresAt.Sub(claims.IssuedAt.Time); ttl != time.Hour {
		t.Errorf("token lives %s, want an hour", ttl)
	}
	// A key Mint is given is kept: the token is then unknown to TestKeys' verifier.
	stranger := TestKeys.Mint(t, auth.TokenOptions{Key: "stranger", Identity: "x", Room: "conseil", Video: auth.GrantsForRole(auth.RoleMember, "conseil")})
	if _, err := auth.NewVerifier(TestKeys.KeySet()).VerifyForRoom(stranger, "conseil"); err == nil {
		t.Error("a token signed for another key verified")
	}
}

func TestLongestAudioGap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	rc := &Receiver{}
	for _, ms := range []int{0, 20, 40, 400, 420, 1500} {
		rc.packets = append(rc.packets, Packet{At: t0.Add(time.Duration(ms) * time.Millisecond), Kind: webrtc.RTPCodecTypeAudio, Packet: &rtp.Packet{}})
	}
	rc.packets = append(rc.packets, Packet{At: t0.Add(time.Second), Kind: webrtc.RTPCodecTypeVideo, Packet: &rtp.Packet{}}) // not audio
	gap, at := rc.LongestAudioGap(t0.Add(30*time.Millisecond), t0.Add(1200*time.Millisecond))
	if gap != 780*time.Millisecond || !at.Equal(t0.Add(420*time.Millisecond)) {
		t.Errorf("longest gap %s at %s, want 780ms from 420 ms (the window ends before the next packet)", gap, at.Sub(t0))
	}
	if n := rc.Audio(); n != 6 {
		t.Errorf("%d audio packets, want 6", n)
	}
}
