package programme_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/programme"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

func TestMain(m *testing.M) { signalingtest.Main(m) }

// startServer is a signalling server broadcasting every room's programme with a 1 s delay.
func startServer(t *testing.T, viewers programme.Viewers) *signalingtest.Server {
	t.Helper()
	return signalingtest.Start(t, signalingtest.Programme(signaling.ProgrammeConfig{
		Broadcast: broadcast.Config{Delay: time.Second}, Viewers: viewers,
	}))
}

// call sends an API request and decodes the JSON answer.
func call(t *testing.T, ts *signalingtest.Server, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	status, raw := ts.Call(t, method, path, token, body)
	return status, signalingtest.Object(raw)
}

func TestViewerTokenRoutes(t *testing.T) {
	ts := startServer(t, programme.Viewers{})

	// No room, no programme: the public cannot create rooms by asking for tokens.
	if code, _ := call(t, ts, "POST", "/api/rooms/nowhere/viewer-token", "", nil); code != 404 {
		t.Errorf("viewer token for a room that is not open: %d, want 404", code)
	}
	if _, ok := ts.Signaling.Room("nowhere"); ok {
		t.Error("asking for a viewer token opened the room")
	}

	ts.Join(t, "council", "alice", auth.RoleMember, 0, nil) // opens the room, and its programme
	code, out := call(t, ts, "POST", "/api/rooms/council/viewer-token", "", nil)
	if code != 200 {
		t.Fatalf("viewer token: %d %v", code, out)
	}
	claims, err := auth.NewVerifier(ts.KeySet()).VerifyForRoom(out["token"].(string), "council")
	if err != nil {
		t.Fatal(err)
	}
	if claims.Role() != auth.RoleViewer || !claims.Video.Hidden || claims.CanPublish() || claims.CanPublishData() {
		t.Errorf("viewer token grants %+v / role %s: want a hidden viewer publishing nothing", claims.Video, claims.Role())
	}
	if ttl := claims.ExpiresAt.Sub(claims.IssuedAt.Time); ttl > 20*time.Minute {
		t.Errorf("viewer token lives %s, want a short life", ttl)
	}

	// The bleep is the chair's.
	member := ts.Token(t, "council", "alice", auth.RoleMember, 0)
	if code, _ := call(t, ts, "POST", "/api/rooms/council/bleep", member, map[string]bool{"on": true}); code != 403 {
		t.Errorf("a member's bleep: %d, want 403", code)
	}
	chair := ts.Token(t, "council", "chair", auth.RoleChair, 0)
	if code, _ := call(t, ts, "POST", "/api/rooms/council/bleep", chair, map[string]any{"on": true, "lastSeconds": 1}); code != 400 {
		t.Errorf("a bleep both now and of the last seconds: %d, want 400", code)
	}
	if code, out := call(t, ts, "POST", "/api/rooms/council/bleep", chair, map[string]bool{"on": true}); code != 200 || out["changed"] != true {
		t.Errorf("chair's bleep: %d %v", code, out)
	}
	if code, _ := call(t, ts, "POST", "/api/rooms/council/bleep", "", map[string]bool{"on": false}); code != 401 {
		t.Errorf("an anonymous bleep: %d, want 401", code)
	}
}

// "Bleep the last N seconds" reaching past the delay is refused (the public has heard it), in
// French to a French console or a client naming no language, in English when asked, with both
// wordings beside; nothing is bleeped.
func TestBleepBeyondTheDelayRefusedInBothLanguages(t *testing.T) {
	ts := startServer(t, programme.Viewers{}) // 1 s of delay
	ts.Join(t, "council", "alice", auth.RoleMember, 0, nil)
	chair := ts.Token(t, "council", "chair", auth.RoleChair, 0)
	const en = "the last 5 s cannot be bleeped: the public has already heard them; only the last 1 s are still held back"
	const fr = "impossible de couvrir les 5 dernières secondes : le public les a déjà entendues ; seules les 1 dernières secondes sont encore retenues"
	for _, c := range []struct{ lang, want string }{{"", fr}, {"fr-FR,fr;q=0.9", fr}, {"en-GB,en;q=0.9,fr;q=0.5", en}} {
		code, raw := ts.CallIn(t, c.lang, "POST", "/api/rooms/council/bleep", chair, map[string]float64{"lastSeconds": 5})
		out := signalingtest.Object(raw)
		msg, _ := out["error"].(string)
		reasons, _ := out["reasons"].(map[string]any)
		if code != 409 || !strings.HasPrefix(msg, c.want) || !strings.HasPrefix(reasons["en"].(string), en) || !strings.HasPrefix(reasons["fr"].(string), fr) {
			t.Errorf("Accept-Language %q: %d %v, want 409 saying %q with both wordings", c.lang, code, out, c.want)
		}
	}
	code, raw := ts.CallIn(t, "en", "POST", "/api/rooms/council/bleep", chair, map[string]float64{"lastSeconds": -1})
	if msg, _ := signalingtest.Object(raw)["error"].(string); code != 400 || msg != "the duration to bleep must be positive (-1 s asked)" {
		t.Errorf("a negative duration: %d %q", code, msg)
	}
	if _, out := call(t, ts, "GET", "/api/rooms/council/bleep", chair, nil); out["bleeps"] != nil {
		t.Errorf("bleeps %v after refusals, want none", out["bleeps"])
	}
}

// A room takes MaxViewers WebRTC viewers; the next one is sent to HLS, until a viewer leaves.
// Members do not count.
func TestTheLivePageTakesMaxViewers(t *testing.T) {
	ts := startServer(t, programme.Viewers{MaxViewers: 1})
	ts.Join(t, "council", "alice", auth.RoleMember, 0, nil)
	_, out := call(t, ts, "POST", "/api/rooms/council/viewer-token", "", nil)
	tok, _ := out["token"].(string)
	if tok == "" {
		t.Fatalf("first viewer token: %v", out)
	}
	viewer := signalingtest.Connect(t, ts.WS, tok, nil)
	code, out := call(t, ts, "POST", "/api/rooms/council/viewer-token", "", nil)
	if msg, _ := out["error"].(string); code != 503 || !strings.Contains(msg, "live page is full (1 viewers)") {
		t.Errorf("a token beyond the cap: %d %v, want 503 sending the viewer to HLS", code, out)
	}
	viewer.Disconnect()
	signalingtest.Eventually(t, "a viewer token once the viewer left", 10*time.Second, func() bool {
		code, _ := call(t, ts, "POST", "/api/rooms/council/viewer-token", "", nil)
		return code == 200
	})
}

// A server without a programme says so to the watch page, and every programme route is 404.
func TestNoProgrammeConfigured(t *testing.T) {
	ts := signalingtest.Start(t, signalingtest.NoMedia)
	code, out := call(t, ts, "POST", "/api/rooms/council/viewer-token", "", nil)
	if msg, _ := out["error"].(string); code != 404 || msg != "this server broadcasts no public programme" {
		t.Errorf("viewer token without a programme: %d %v", code, out)
	}
	for _, path := range []string{"/api/rooms/council/programme", "/live/council/index.m3u8"} {
		if code, _ := call(t, ts, "GET", path, "", nil); code != 404 {
			t.Errorf("GET %s without a programme: %d, want 404", path, code)
		}
	}
}
