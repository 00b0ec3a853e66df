package signaling_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// FuzzAPIBody posts a body of any contents to each POST route of the room's /api, with the
// chair's and the clerk's tokens, on a real server whose session is open. Whatever the body, the
// answer is not a server error, and a refusal says why.
func FuzzAPIBody(f *testing.F) {
	ts := signalingtest.Start(f, signalingtest.Council(f, f.TempDir()))
	var paths []string
	param := regexp.MustCompile(`\{[a-z]+\}`)
	for _, r := range ts.Signaling.Routes() {
		if r.Method == "POST" && strings.HasPrefix(r.Pattern, "/api/rooms/{room}/") {
			p := strings.Replace(r.Pattern, "{room}", "salle", 1)
			paths = append(paths, param.ReplaceAllString(p, "1"))
		}
	}
	if len(paths) == 0 {
		f.Fatal("no POST route under /api/rooms/{room}/")
	}
	tokens := []string{
		ts.Token(f, "salle", "anne", auth.RoleChair, 1),
		ts.Token(f, "salle", "greffe", auth.RoleClerk, 0),
	}
	session, err := json.Marshal(map[string]any{
		"body":  map[string]string{"name": "Conseil communautaire de Test", "kind": "epci", "profile": "fr-epci-visio"},
		"title": "Séance du 27 novembre", "chair": 1, "rosterCsv": signalingtest.Roster(5),
	})
	if err != nil {
		f.Fatal(err)
	}
	post := func(t testing.TB, path, token string, body []byte) (int, []byte) {
		return ts.Call(t, "POST", path, token, signalingtest.Raw{ContentType: "application/json", Body: body})
	}
	if status, out := post(f, "/api/rooms/salle/session", tokens[1], session); status != 200 {
		f.Fatalf("open the session: %d %s", status, out)
	}
	for i := range paths {
		f.Add(byte(i), byte(0), []byte(`{}`))
		f.Add(byte(i), byte(1), []byte(`{"seat":2,"place":"chamber","id":"1","title":"Budget","kind":"","choice":"for","vote":"1"}`))
	}
	f.Add(byte(0), byte(1), session)
	f.Add(byte(0), byte(0), []byte(`{"seat":1e400}`))

	f.Fuzz(func(t *testing.T, route, role byte, body []byte) {
		path := paths[int(route)%len(paths)]
		status, out := post(t, path, tokens[int(role)%len(tokens)], body)
		if status >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, status, out)
		}
		if status >= 400 && len(bytes.TrimSpace(out)) == 0 {
			t.Fatalf("POST %s %q: %d without a reason", path, body, status)
		}
	})
}
