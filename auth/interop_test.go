package auth_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	lkauth "github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/ingeco/hemicycle/auth"
)

// These tests hold our tokens to LiveKit's own code (protocol v1.54.0), so
// that LiveKit SDKs and tools and Hemicycle read the same token the same way.

const (
	lkKey    = "APIlivekitInterop"
	lkSecret = "interop-secret-of-thirty-two-bytes-plus"
)

func TestLiveKitTokenVerifiesWithOurs(t *testing.T) {
	tests := []struct {
		name  string
		grant func(g *lkauth.VideoGrant)
	}{
		{"permissions absent", func(*lkauth.VideoGrant) {}},
		{"subscribe denied", func(g *lkauth.VideoGrant) { g.SetCanSubscribe(false) }},
		{"publish denied, data follows", func(g *lkauth.VideoGrant) { g.SetCanPublish(false) }},
		{"publish denied, data granted", func(g *lkauth.VideoGrant) { g.SetCanPublish(false); g.SetCanPublishData(true) }},
		{"data denied alone", func(g *lkauth.VideoGrant) { g.SetCanPublishData(false) }},
		{"sources restrict", func(g *lkauth.VideoGrant) {
			g.SetCanPublishSources([]livekit.TrackSource{livekit.TrackSource_CAMERA, livekit.TrackSource_MICROPHONE})
		}},
		{"publish denied beats sources", func(g *lkauth.VideoGrant) {
			g.SetCanPublish(false)
			g.SetCanPublishSources([]livekit.TrackSource{livekit.TrackSource_SCREEN_SHARE})
		}},
		{"admin, hidden, recorder, metadata", func(g *lkauth.VideoGrant) {
			g.RoomAdmin, g.Hidden, g.Recorder = true, true, true
			g.SetCanUpdateOwnMetadata(true)
		}},
	}
	sources := map[string]livekit.TrackSource{
		auth.SourceCamera:           livekit.TrackSource_CAMERA,
		auth.SourceMicrophone:       livekit.TrackSource_MICROPHONE,
		auth.SourceScreenShare:      livekit.TrackSource_SCREEN_SHARE,
		auth.SourceScreenShareAudio: livekit.TrackSource_SCREEN_SHARE_AUDIO,
	}
	v := auth.NewVerifier(auth.KeySet{lkKey: lkSecret})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lg := &lkauth.VideoGrant{RoomJoin: true, Room: "conseil"}
			tc.grant(lg)
			tok, err := lkauth.NewAccessToken(lkKey, lkSecret).
				SetVideoGrant(lg).SetIdentity("alice").SetName("Alice").SetMetadata("m").
				SetAttributes(map[string]string{"seat": "7"}).SetValidFor(10 * time.Minute).ToJWT()
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.VerifyForRoom(tok, "conseil")
			if err != nil {
				t.Fatalf("our verifier refused LiveKit's token: %v", err)
			}
			if c.ParticipantIdentity() != "alice" || c.Name != "Alice" || c.Metadata != "m" || c.Attributes["seat"] != "7" {
				t.Errorf("identity %q name %q metadata %q attributes %v", c.ParticipantIdentity(), c.Name, c.Metadata, c.Attributes)
			}
			if c.Role() != "" {
				t.Errorf("a plain LiveKit token has role %q", c.Role())
			}
			if c.CanPublish() != lg.GetCanPublish() || c.CanSubscribe() != lg.GetCanSubscribe() ||
				c.CanPublishData() != lg.GetCanPublishData() || c.Video.AllowsOwnMetadataUpdate() != lg.GetCanUpdateOwnMetadata() {
				t.Errorf("ours pub/sub/data/meta = %v/%v/%v/%v, LiveKit %v/%v/%v/%v",
					c.CanPublish(), c.CanSubscribe(), c.CanPublishData(), c.Video.AllowsOwnMetadataUpdate(),
					lg.GetCanPublish(), lg.GetCanSubscribe(), lg.GetCanPublishData(), lg.GetCanUpdateOwnMetadata())
			}
			for name, src := range sources {
				if c.CanPublishSource(name) != lg.GetCanPublishSource(src) {
					t.Errorf("source %s: ours %v, LiveKit %v", name, c.CanPublishSource(name), lg.GetCanPublishSource(src))
				}
			}
			if c.Video.RoomAdmin != lg.RoomAdmin || c.Video.Hidden != lg.Hidden || c.Video.Recorder != lg.Recorder ||
				!slices.Equal(c.Video.CanPublishSources, lg.CanPublishSources) {
				t.Errorf("grant read back as %+v, LiveKit wrote %+v", c.Video, lg)
			}
		})
	}
}

// TestLiveKitTriStateReadsBack pins the tri-state meaning with literal
// expectations, so that a change on either side shows here.
func TestLiveKitTriStateReadsBack(t *testing.T) {
	lg := &lkauth.VideoGrant{RoomJoin: true, Room: "conseil", CanSubscribe: new(false)}
	tok, err := lkauth.NewAccessToken(lkKey, lkSecret).SetVideoGrant(lg).SetIdentity("bob").ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	c, err := auth.NewVerifier(auth.KeySet{lkKey: lkSecret}).VerifyJoin(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Video.CanPublish != nil || c.Video.CanPublishData != nil || c.Video.CanSubscribe == nil || *c.Video.CanSubscribe {
		t.Errorf("tri-state lost in transit: %+v", c.Video)
	}
	if !c.CanPublish() || !c.CanPublishData() || c.CanSubscribe() {
		t.Errorf("absent canPublish/canPublishData must read allowed, canSubscribe false denied")
	}
}

func TestOurTokenVerifiesWithLiveKit(t *testing.T) {
	for _, role := range auth.Roles() {
		t.Run(string(role), func(t *testing.T) {
			ours := auth.GrantsForRole(role, "conseil")
			tok, err := auth.Issue(auth.TokenOptions{
				Key: lkKey, Secret: lkSecret, Identity: "m-7", Name: "Marc", Room: "conseil",
				Metadata: "md", Attributes: map[string]string{"body": "ville-a"}, TTL: 10 * time.Minute,
				Video: ours, Council: &auth.CouncilGrant{Role: role, Seat: 7, Body: "ville-a"},
			})
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := lkauth.ParseAPIToken(tok)
			if err != nil {
				t.Fatalf("LiveKit cannot parse our token: %v", err)
			}
			if parsed.APIKey() != lkKey || parsed.Identity() != "m-7" {
				t.Errorf("LiveKit reads key %q identity %q", parsed.APIKey(), parsed.Identity())
			}
			reg, grants, err := parsed.Verify(lkSecret)
			if err != nil {
				t.Fatalf("LiveKit refused our token: %v", err)
			}
			if reg.ID == "" || reg.ExpiresAt == nil {
				t.Errorf("jti %q exp %v", reg.ID, reg.ExpiresAt)
			}
			if grants.Identity != "m-7" || grants.Name != "Marc" || grants.Metadata != "md" ||
				!maps.Equal(grants.Attributes, map[string]string{"body": "ville-a"}) {
				t.Errorf("LiveKit reads identity %q name %q metadata %q attributes %v",
					grants.Identity, grants.Name, grants.Metadata, grants.Attributes)
			}
			lg := grants.Video
			if lg == nil {
				t.Fatal("LiveKit sees no video grant")
			}
			if lg.Room != "conseil" || !lg.RoomJoin || lg.RoomAdmin != ours.RoomAdmin || lg.Hidden != ours.Hidden ||
				lg.GetCanPublish() != ours.AllowsPublish() || lg.GetCanSubscribe() != ours.AllowsSubscribe() ||
				lg.GetCanPublishData() != ours.AllowsPublishData() {
				t.Errorf("LiveKit reads %+v, we issued %+v", lg, ours)
			}

			if _, _, err := parsed.Verify("a-different-secret-of-32-bytes-or-more"); err == nil {
				t.Error("LiveKit accepted our token under the wrong secret, so the check above proves nothing")
			}
		})
	}
}
