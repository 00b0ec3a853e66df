package signaling_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/store"
	"github.com/ingeco/hemicycle/store/redistest"
)

// The preparation of sittings, through the API as a clerk uses it: a body and its roster,
// contacts, a sitting with its agenda and notes, the convocation, its opening on the day.

// rosterWithContacts is the test council with the e-mail of seats 2 and 3 and a phone for 4.
const rosterWithContacts = "siège;nom;groupe;fonction;courriel;téléphone\n" +
	"1;Anne Maire;Majorité;maire;;\n" +
	"2;Bruno Adjoint;Majorité;adjoint;bruno@example.org;\n" +
	"3;Chloé Conseil;Opposition;conseillère;chloe@example.org;\n" +
	"4;David Elu;Majorité;conseiller;;+33 6 00 00 00 04\n" +
	"5;Emma Vote;Opposition;conseillère;;\n"

// send calls the server with a raw body of contentType (JSON when body is not bytes) and
// Accept-Language lang, and decodes a JSON answer.
func send(t *testing.T, ts *signalingtest.Server, method, path, token, lang string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, contentType = bytes.NewReader(b), "text/csv; charset=utf-8"
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, ts.HTTP.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, signalingtest.Object(raw)
}

// sendOK is send that fails the test unless the answer is 200.
func sendOK(t *testing.T, ts *signalingtest.Server, method, path, token string, body any) map[string]any {
	t.Helper()
	status, out := send(t, ts, method, path, token, "", body)
	if status != 200 {
		t.Fatalf("%s %s: %d %v", method, path, status, out)
	}
	return out
}

// bodyJournal reads the body's journal: each entry's type, author and payload.
func bodyJournalOf(t *testing.T, ts *signalingtest.Server, body, token string) []map[string]any {
	t.Helper()
	status, raw := ts.Call(t, "GET", "/api/bodies/"+body+"/journal", token, nil)
	if status != 200 {
		t.Fatalf("journal: %d %s", status, raw)
	}
	var out []map[string]any
	for line := range strings.Lines(string(raw)) {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("journal line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

func createBody(t *testing.T, ts *signalingtest.Server, body, clerk string, population int) {
	t.Helper()
	sendOK(t, ts, "POST", "/api/bodies/"+body, clerk, map[string]any{
		"name": "Conseil municipal de Test", "kind": "commune", "profile": "fr-commune", "timeZone": "Europe/Paris", "population": population,
	})
	sendOK(t, ts, "POST", "/api/bodies/"+body+"/roster", clerk, []byte(rosterWithContacts))
}

func TestBodyRosterEditsAndContacts(t *testing.T) {
	ts, _ := startCouncilServer(t, signalingtest.NoMedia)
	bodyRosterEditsAndContacts(t, ts)
}

// TestBodyRosterEditsAndContactsInRedis runs the same with the Redis store, as several nodes do.
func TestBodyRosterEditsAndContactsInRedis(t *testing.T) {
	j := store.NewRedis(redistest.StartRedis(t).Client(t), "prep:")
	t.Cleanup(func() { _ = j.Close() })
	ts := startServer(t, signalingtest.NoMedia, func(c *signaling.Config) { c.Journal, c.Records, c.Profiles = j, j, signalingtest.Profile })
	bodyRosterEditsAndContacts(t, ts)
}

func bodyRosterEditsAndContacts(t *testing.T, ts *signalingtest.Server) {
	clerk := ts.BodyToken(t, "test", "greffe", auth.RoleClerk)
	createBody(t, ts, "test", clerk, 1200)

	got := sendOK(t, ts, "GET", "/api/bodies/test", clerk, nil)
	if got["membersInOffice"] != 5.0 || got["seats"] != 5.0 || got["timeZone"] != "Europe/Paris" || got["profile"] != "fr-commune" {
		t.Fatalf("body: %v", got)
	}
	// The roster keeps no contact detail; they are listed apart.
	if raw, _ := json.Marshal(got); bytes.Contains(raw, []byte("example.org")) || bytes.Contains(raw, []byte("+33")) {
		t.Fatalf("the body's roster carries contact details: %s", raw)
	}
	contacts := sendOK(t, ts, "GET", "/api/bodies/test/contacts", clerk, nil)["contacts"].([]any)
	if len(contacts) != 3 || contacts[0].(map[string]any)["email"] != "bruno@example.org" || contacts[2].(map[string]any)["phone"] != "+33 6 00 00 00 04" {
		t.Fatalf("contacts: %v", contacts)
	}

	// A line that cannot be read is refused with its number in the caller's language, and the
	// roster stays as it was.
	bad := []byte("seat,name\n1,Anne\ntrois,Chloé\n")
	status, fr := send(t, ts, "POST", "/api/bodies/test/roster", clerk, "fr-FR,fr;q=0.9", bad)
	if status != 400 || fr["error"] != `ligne 3, colonne 1 : le siège "trois" n'est pas un nombre entier positif` || fr["line"] != 3.0 {
		t.Errorf("French refusal: %d %v", status, fr)
	}
	status, en := send(t, ts, "POST", "/api/bodies/test/roster", clerk, "en-GB,en;q=0.8", bad)
	if status != 400 || en["error"] != `line 3, column 1: seat "trois" is not a positive whole number` {
		t.Errorf("English refusal: %d %v", status, en)
	}
	// Every fault of the file, a birth date as much as a seat or the file itself, is worded
	// for a French clerk, which a client naming no language is taken to be.
	for _, c := range []struct {
		file, want string
		line       any
	}{
		{"siège;nom;né le\n1;Anne;31/02/1961\n", `ligne 2, colonne 3 : la date de naissance "31/02/1961" n'est pas une date comme 27/03/1961 ou 1961-03-27`, 2.0},
		{"", "le fichier est vide (il faut une ligne d'en-tête : siège, nom, groupe, fonction)", 1.0},
		{"si\xe8ge;nom\n1;Anne\n", "le fichier n'est pas du texte UTF-8 (enregistrez le tableur au format « CSV UTF-8 »)", nil},
	} {
		status, out := send(t, ts, "POST", "/api/bodies/test/roster", clerk, "", []byte(c.file))
		if status != 400 || out["error"] != c.want || out["line"] != c.line {
			t.Errorf("%q: %d %v, want 400 %q on line %v", c.file, status, out, c.want, c.line)
		}
	}
	if got := sendOK(t, ts, "GET", "/api/bodies/test", clerk, nil); got["membersInOffice"] != 5.0 {
		t.Errorf("a refused file changed the roster: %v", got)
	}

	// Bruno resigns: his seat is vacant and his e-mail forgotten; Fanny replaces him.
	sendOK(t, ts, "POST", "/api/bodies/test/roster/edits", clerk, map[string]any{"change": "resignation", "seat": 2})
	if got := sendOK(t, ts, "GET", "/api/bodies/test", clerk, nil); got["membersInOffice"] != 4.0 {
		t.Errorf("after the resignation: %v", got)
	}
	contacts = sendOK(t, ts, "GET", "/api/bodies/test/contacts", clerk, nil)["contacts"].([]any)
	if len(contacts) != 2 || contacts[0].(map[string]any)["seat"] != 3.0 {
		t.Errorf("the resigned member's contact is kept: %v", contacts)
	}
	if status, out := send(t, ts, "POST", "/api/bodies/test/roster/edits", clerk, "", map[string]any{"change": "vacancy", "seat": 2}); status != 400 {
		t.Errorf("a vacant seat fell vacant again: %d %v", status, out)
	}
	sendOK(t, ts, "POST", "/api/bodies/test/roster/edits", clerk, map[string]any{
		"change": "replacement", "seat": 2, "name": "Fanny Suivante", "group": "Majorité", "email": "fanny@example.org"})
	roster := sendOK(t, ts, "GET", "/api/bodies/test", clerk, nil)["roster"].(map[string]any)["seats"].([]any)
	if s := roster[1].(map[string]any); s["name"] != "Fanny Suivante" {
		t.Errorf("seat 2 after the replacement: %v", s)
	}
	contacts = sendOK(t, ts, "GET", "/api/bodies/test/contacts", clerk, nil)["contacts"].([]any)
	if c := contacts[0].(map[string]any); c["seat"] != 2.0 || c["email"] != "fanny@example.org" || c["name"] != "Fanny Suivante" {
		t.Errorf("the new member's contact: %v", contacts)
	}
	// Re-importing a file without contact columns forgets every contact.
	sendOK(t, ts, "POST", "/api/bodies/test/roster", clerk, []byte(signalingtest.Roster(5)))
	if contacts = sendOK(t, ts, "GET", "/api/bodies/test/contacts", clerk, nil)["contacts"].([]any); len(contacts) != 0 {
		t.Errorf("contacts kept after a roster without them: %v", contacts)
	}

	// The journal has every change with who made it, in order; the edits say before and after.
	var types []string
	var resigned, replaced map[string]any
	for _, e := range bodyJournalOf(t, ts, "test", clerk) {
		types = append(types, e["type"].(string))
		data := e["data"].(map[string]any)
		if by := data["by"].(map[string]any); by["identity"] != "greffe" || by["role"] != "clerk" || e["at"] == "" {
			t.Errorf("entry %v: author or time missing", e)
		}
		if what, _ := data["what"].(map[string]any); e["type"] == "roster.edited" {
			switch what["change"] {
			case "resignation":
				resigned = what
			case "replacement":
				replaced = what
			}
		}
	}
	if want := "body.created roster.imported roster.edited roster.edited roster.imported"; strings.Join(types, " ") != want {
		t.Errorf("journal: %v, want %s", types, want)
	}
	if resigned["before"].(map[string]any)["name"] != "Bruno Adjoint" || resigned["after"].(map[string]any)["name"] != nil ||
		replaced["after"].(map[string]any)["name"] != "Fanny Suivante" {
		t.Errorf("the edits' before and after: %v / %v", resigned, replaced)
	}

	// Permissions come from the token: its body, and its role.
	if status, out := send(t, ts, "GET", "/api/bodies/test", ts.BodyToken(t, "autre", "greffe-autre", auth.RoleClerk), "", nil); status != 403 {
		t.Errorf("another body's clerk read it: %d %v", status, out)
	}
	chair := ts.BodyToken(t, "test", "anne", auth.RoleChair)
	if status, _ := send(t, ts, "GET", "/api/bodies/test", chair, "", nil); status != 200 {
		t.Errorf("the chair cannot read the body: %d", status)
	}
	for _, path := range []string{"/api/bodies/test/roster/edits", "/api/bodies/test"} {
		if status, out := send(t, ts, "POST", path, chair, "", map[string]any{}); status != 403 {
			t.Errorf("the chair may POST %s: %d %v", path, status, out)
		}
	}
	if status, out := send(t, ts, "GET", "/api/bodies/test/contacts", ts.Token(t, "room", "m", auth.RoleMember, 3), "", nil); status != 403 {
		t.Errorf("a member's room token read the contacts: %d %v", status, out)
	}
}

// clock is the server's clock, real time shifted by a offset the test moves.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time      { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) set(d time.Duration) { c.offset.Store(int64(d)) }
func (c *clock) option() signalingtest.Option {
	return func(cfg *signaling.Config) { cfg.Clock = c.now }
}

// invitations configures the links and the key the server mints join tokens with.
func invitations(relay *signalingtest.SMTPRelay) signalingtest.Option {
	return func(cfg *signaling.Config) {
		cfg.Invitations = signaling.InvitationConfig{PublicURL: "https://visio.mairie-test.example", Key: signalingtest.TestKeys.Key, Secret: signalingtest.TestKeys.Secret}
		if relay != nil {
			cfg.Invitations.Mail = &relay.Relay
		}
	}
}

func itemIDs(items []any) string {
	var ids []string
	for _, it := range items {
		ids = append(ids, it.(map[string]any)["id"].(string))
	}
	return strings.Join(ids, ",")
}

var twoItems = []map[string]any{
	{"id": "1", "title": "Budget primitif 2027", "kind": "budget-primitif", "rapporteur": "Bruno Adjoint", "proposal": "Le conseil adopte le budget primitif."},
	{"id": "2", "title": "Tarifs de la cantine", "rapporteur": "Chloé Conseil", "proposal": "Les tarifs sont revalorisés de 2 %."},
}

func TestPreparedSittingConvocationAndOpening(t *testing.T) {
	var clk clock
	ts, _ := startCouncilServer(t, signalingtest.NoMedia, clk.option(), invitations(nil))
	clerk := ts.BodyToken(t, "test", "greffe", auth.RoleClerk)
	createBody(t, ts, "test", clerk, 1200) // under 3,500 inhabitants: three clear days

	// Two days ahead is late: at most one clear day is left. The warning is in the caller's
	// language; in an emergency one clear day is enough.
	soon := map[string]any{"title": "Séance extraordinaire", "start": time.Now().Add(48 * time.Hour), "room": "salle-x", "agenda": twoItems}
	status, fr := send(t, ts, "POST", "/api/bodies/test/sittings/urgente", clerk, "fr", soon)
	check, _ := fr["convocationCheck"].(map[string]any)
	if w, _ := fr["warning"].(string); status != 200 || check["late"] != true || check["requiredClearDays"] != 3.0 ||
		!strings.HasPrefix(w, "convocation tardive : envoyée le ") || !strings.Contains(w, "il en faut 3") {
		t.Fatalf("late convocation in French: %d %v", status, fr)
	}
	if _, en := send(t, ts, "GET", "/api/bodies/test/sittings/urgente", clerk, "en", nil); !strings.Contains(fmt.Sprint(en["warning"]), "3 are required") {
		t.Errorf("late convocation in English: %v", en["warning"])
	}
	soon["emergency"] = true
	if _, out := send(t, ts, "POST", "/api/bodies/test/sittings/urgente", clerk, "fr", soon); out["warning"] != nil ||
		out["convocationCheck"].(map[string]any)["requiredClearDays"] != 1.0 {
		t.Errorf("an emergency sitting two days ahead: %v", out)
	}

	// A sitting ten days ahead, with two items and a note.
	start := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Minute)
	s1 := sendOK(t, ts, "POST", "/api/bodies/test/sittings/s1", clerk, map[string]any{
		"title": "Séance ordinaire", "start": start, "place": "Salle du conseil, mairie de Test", "room": "salle-s1",
		"chair": 1, "secretary": 3, "agenda": twoItems, "convocation": "La séance est publique.",
	})
	if s1["warning"] != nil || s1["convocationCheck"].(map[string]any)["late"] != false {
		t.Errorf("a convocation ten days ahead is late: %v", s1)
	}
	noteText := []byte("%PDF-1.4 note de synthèse du budget\n")
	status, withNote := send(t, ts, "POST", "/api/bodies/test/sittings/s1/items/1/notes?name=note-budget.pdf", clerk, "", noteText)
	sum := sha256.Sum256(noteText)
	notes, _ := withNote["agenda"].([]any)[0].(map[string]any)["notes"].([]any)
	if status != 200 || len(notes) != 1 || notes[0].(map[string]any)["sha256"] != hex.EncodeToString(sum[:]) || notes[0].(map[string]any)["size"] != float64(len(noteText)) {
		t.Fatalf("note attached: %d %v", status, withNote)
	}
	status, back := ts.Call(t, "GET", "/api/bodies/test/sittings/s1/items/1/notes/"+hex.EncodeToString(sum[:]), clerk, nil)
	if status != 200 || !bytes.Equal(back, noteText) {
		t.Errorf("the note read back: %d %q", status, back)
	}

	// Sending the convocation invites every member in office; after it, the sitting is changed
	// item by item only, and each change is recorded as made after sending.
	sent := sendOK(t, ts, "POST", "/api/bodies/test/sittings/s1/convocation", clerk, nil)
	if invs := sent["invitations"].([]any); len(invs) != 5 {
		t.Fatalf("invitations: %v", invs)
	}
	if status, out := send(t, ts, "POST", "/api/bodies/test/sittings/s1", clerk, "", map[string]any{"title": "x", "start": start, "room": "salle-s1"}); status != 409 {
		t.Errorf("a sent sitting was rewritten: %d %v", status, out)
	}
	sendOK(t, ts, "POST", "/api/bodies/test/sittings/s1/items", clerk, map[string]any{"id": "3", "title": "Motion sur la gare", "rapporteur": "Anne Maire"})
	after := sendOK(t, ts, "POST", "/api/bodies/test/sittings/s1/items/2/withdraw", clerk, map[string]any{"reason": "dossier incomplet"})
	agenda := after["agenda"].([]any)
	if itemIDs(agenda) != "1,2,3" || agenda[1].(map[string]any)["withdrawn"] != true || agenda[2].(map[string]any)["addedAfterSending"] != true {
		t.Errorf("agenda after sending: %v", agenda)
	}
	changes := after["changesAfterSending"].([]any)
	if len(changes) != 2 || changes[0].(map[string]any)["change"] != "added" || changes[1].(map[string]any)["reason"] != "dossier incomplet" ||
		changes[1].(map[string]any)["by"] != "greffe" {
		t.Errorf("changes after sending: %v", changes)
	}
	var types []string
	for _, e := range bodyJournalOf(t, ts, "test", clerk) {
		if what, _ := e["data"].(map[string]any)["what"].(map[string]any); what["afterSending"] == true {
			types = append(types, e["type"].(string))
		}
	}
	if strings.Join(types, " ") != "item.added item.withdrawn" {
		t.Errorf("journalled after sending: %v", types)
	}

	// On the day, the clerk opens the sitting in its room from its preparation.
	roomClerk := ts.Token(t, "salle-s1", "greffe", auth.RoleClerk, 0)
	if status, out := send(t, ts, "POST", "/api/rooms/salle-x/session", ts.Token(t, "salle-x", "greffe", auth.RoleClerk, 0), "", map[string]any{"prepared": "test/s1"}); status != 409 {
		t.Errorf("opened in another room: %d %v", status, out)
	}
	view := sendOK(t, ts, "POST", "/api/rooms/salle-s1/session", roomClerk, map[string]any{"prepared": "test/s1"})
	session := view["session"].(map[string]any)
	if session["title"] != "Séance ordinaire" || session["location"] != "Salle du conseil, mairie de Test" || session["chair"] != 1.0 ||
		session["body"].(map[string]any)["profile"] != "fr-commune" {
		t.Errorf("session opened: %v", session)
	}
	if seats := view["seats"].([]any); len(seats) != 5 || seats[2].(map[string]any)["name"] != "Chloé Conseil" {
		t.Errorf("roster opened: %v", seats)
	}
	if items, _ := view["items"].([]any); itemIDs(items) != "1,3" {
		t.Errorf("agenda opened: %v (item 2 was withdrawn)", items)
	}
}
