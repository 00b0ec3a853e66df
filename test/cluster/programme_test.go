package cluster_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/test/sse"
)

// TestProgrammeFromAnyNode holds a broadcast sitting on one node and follows it through the
// other, as the public and the chair reaching the wrong node would: a viewer token minted
// there brings the delayed programme, the delayed events stream, the chair's bleep is marked
// and recorded on the room's node (journal and minutes), and the HLS playlist comes through.
func TestProgrammeFromAnyNode(t *testing.T) {
	c := startClusterWith(t, 2, "broadcast:\n  enabled: true\n  delay: 1s\n  hls: true\n")
	const room = "conseil-diffuse"
	chairTok := keys.Token(t, room, "anne", auth.RoleChair, 1)
	clerkTok := keys.Token(t, room, "greffe", auth.RoleClerk, 0)
	entry := c.nodes[0]
	must(t, entry, "POST", "/api/rooms/"+room+"/session", clerkTok, map[string]any{
		"body":  map[string]string{"name": "Commune de Test", "kind": "commune", "profile": "generic"},
		"title": "Séance publique", "chair": 1,
		"rosterCsv": signalingtest.Roster(2),
	})
	host := c.node(c.placement()[room])
	other := c.others(host.id)[0]
	publish(t, join(t, host, chairTok, nil), "anne", true)

	// The public reaches the other node.
	status, out := call(t, other, "POST", "/api/rooms/"+room+"/viewer-token", "", nil)
	if status != 200 {
		t.Fatalf("viewer token through %s (room on %s): %d %v", other.id, host.id, status, out)
	}
	viewerTok := out["token"].(string)
	rx, cb := signalingtest.NewReceiver()
	join(t, other, viewerTok, cb)
	signalingtest.Eventually(t, "the viewer hears the programme through the other node", 30*time.Second, func() bool {
		return rx.Count("programme-audio-0") >= 50 && rx.Count("programme-video") > 0
	})

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", other.url()+"/api/rooms/"+room+"/programme/events?access_token="+viewerTok, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("programme events through %s: %d", other.id, resp.StatusCode)
	}
	events := sse.Names(ctx, resp.Body)
	waitEvent := func(name string) {
		t.Helper()
		if err := sse.Await(ctx, events, name); err != nil {
			t.Fatalf("programme events through %s: %v", other.id, err)
		}
	}
	waitEvent("state")

	// The chair bleeps through the other node too.
	status, out = call(t, other, "POST", "/api/rooms/"+room+"/bleep", chairTok, map[string]float64{"lastSeconds": 0.5})
	if status != 200 || out["recorded"] != true {
		t.Fatalf("bleep through %s: %d %v", other.id, status, out)
	}
	waitEvent("bleep")
	status, out = call(t, host, "GET", "/api/rooms/"+room+"/bleep", clerkTok, nil)
	if bleeps, _ := out["bleeps"].([]any); status != 200 || len(bleeps) != 1 {
		t.Errorf("bleeps on %s, the room's node: %d %v", host.id, status, out)
	}
	_, journal := call(t, other, "GET", "/api/rooms/"+room+"/journal", clerkTok, nil)
	if raw, _ := journal["raw"].(string); !strings.Contains(raw, `"type":"programme.bleeped"`) || !strings.Contains(raw, `"identity":"anne"`) {
		t.Errorf("the journal lacks the chair's bleep:\n%v", journal)
	}
	_, minutes := call(t, other, "GET", "/api/rooms/"+room+"/minutes", clerkTok, nil)
	if raw, _ := minutes["raw"].(string); !strings.Contains(raw, "Diffusion publique interrompue de") {
		t.Errorf("the minutes lack the bleep:\n%v", minutes)
	}

	signalingtest.Eventually(t, "the HLS media playlist through the other node", 60*time.Second, func() bool {
		status, out := call(t, other, "GET", "/live/"+room+"/video.m3u8", "", nil)
		raw, _ := out["raw"].(string)
		return status == 200 && strings.HasPrefix(raw, "#EXTM3U") && strings.Contains(raw, ".ts")
	})
	if owner := c.placement()[room]; owner != host.id {
		t.Errorf("the room moved to %s while followed through %s", owner, other.id)
	}
}
