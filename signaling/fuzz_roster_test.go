package signaling_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// FuzzRosterImport gives a roster file of any contents to a real server both ways a clerk
// does: imported into a prepared body (POST /api/bodies/{body}/roster, the CSV as the body)
// and as the rosterCsv of a sitting opened at once. Neither answer is a server error; a
// refusal says why, and changes nothing: the body, its contacts and its journal read as
// before, and no sitting is opened. An accepted file gives the body the seats the council
// package reads in it. The seeds are the clerk's files of the tests and docs/example-roster.csv.
func FuzzRosterImport(f *testing.F) {
	for _, seed := range []string{rosterWithContacts, signalingtest.Roster(5),
		"seat,name\n1,Anne\ntrois,Chloé\n", "siège;nom;né le\n1;Anne;31/02/1961\n", "", "si\xe8ge;nom\n1;Anne\n",
		"\ufeffsiège;nom;groupe;fonction\n1;\"Durand; Paul\";;\n2;Eve;;\n"} {
		f.Add([]byte(seed))
	}
	ts := signalingtest.Start(f, signalingtest.Council(f, f.TempDir()), signalingtest.NoMedia)
	clerk := ts.BodyToken(f, "test", "greffe", auth.RoleClerk)
	get := func(t testing.TB, path, token string) []byte {
		status, out := ts.Call(t, "GET", path, token, nil)
		if status != 200 {
			t.Fatalf("GET %s: %d %s", path, status, out)
		}
		return out
	}
	created := map[string]any{"name": "Conseil municipal de Test", "kind": "commune", "profile": "fr-commune", "timeZone": "Europe/Paris", "population": 1200}
	if status, out := ts.Call(f, "POST", "/api/bodies/test", clerk, created); status != 200 {
		f.Fatalf("create the body: %d %s", status, out)
	}
	// refused checks a refusal's answer: a client error with its reason.
	refused := func(t *testing.T, what string, status int, out []byte) {
		var e struct {
			Error string `json:"error"`
		}
		if status >= 500 || json.Unmarshal(out, &e) != nil || e.Error == "" {
			t.Fatalf("%s refused with %d %s, want a client error with its reason", what, status, out)
		}
	}

	n := 0
	f.Fuzz(func(t *testing.T, file []byte) {
		n++
		body, contacts, journal := get(t, "/api/bodies/test", clerk), get(t, "/api/bodies/test/contacts", clerk), get(t, "/api/bodies/test/journal", clerk)
		status, out := ts.Call(t, "POST", "/api/bodies/test/roster", clerk, signalingtest.Raw{ContentType: "text/csv; charset=utf-8", Body: file})
		members, perr := council.ParseMembers(bytes.NewReader(file))
		if status != 200 {
			refused(t, "the import", status, out)
			if !bytes.Equal(get(t, "/api/bodies/test", clerk), body) || !bytes.Equal(get(t, "/api/bodies/test/contacts", clerk), contacts) ||
				!bytes.Equal(get(t, "/api/bodies/test/journal", clerk), journal) {
				t.Fatalf("a refused import (%d %s) changed the body, its contacts or its journal", status, out)
			}
		} else {
			var got struct {
				Seats int `json:"seats"`
			}
			if err := json.Unmarshal(out, &got); err != nil || perr != nil || got.Seats != len(members) {
				t.Fatalf("the import was accepted with %s; the council package reads %d seats (%v)", out, len(members), perr)
			}
		}

		room := fmt.Sprintf("salle-%d", n)
		chair := ts.Token(t, room, "greffe", auth.RoleClerk, 0)
		session := map[string]any{
			"body":  map[string]string{"name": "Conseil municipal de Test", "kind": "commune", "profile": "fr-commune"},
			"title": "Séance", "rosterCsv": string(file),
		}
		status, out = ts.Call(t, "POST", "/api/rooms/"+room+"/session", chair, session)
		if status != 200 {
			refused(t, "the sitting", status, out)
			if after, state := ts.Call(t, "GET", "/api/rooms/"+room+"/state", chair, nil); after != http.StatusNotFound {
				t.Fatalf("a refused sitting (%d %s) opened one: %d %s", status, out, after, state)
			}
		}
	})
}
