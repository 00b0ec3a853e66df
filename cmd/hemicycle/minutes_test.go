package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/store"
)

const minutesRoom = "cc-vallee"

// settableClock is the server's clock in these tests: each step of the session happens at a
// time the test chose, so the minutes' times can be asserted.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *settableClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// apiServer is the deliberation API on loopback with a signed file journal, as `hemicycle
// --dev` has: DATA_DIR/journal/ROOM.jsonl and the key ring DATA_DIR/journal-keys.json.
type apiServer struct {
	*signalingtest.Server
	clock   *settableClock
	journal string // the room's journal file
	ring    string // the key ring file
}

func startAPIServer(t *testing.T, loc *time.Location) *apiServer {
	t.Helper()
	data := t.TempDir()
	clock := &settableClock{t: time.Date(2026, 3, 5, 17, 0, 0, 0, time.UTC)}
	// No media engine: nobody connects to the room, the session is run through the API alone.
	s := signalingtest.Start(t, signalingtest.NoMedia, signalingtest.SignedCouncil(t, data), func(c *signaling.Config) {
		c.Profiles, c.Clock, c.Location = loadProfile, clock.now, loc
	})
	return &apiServer{Server: s, clock: clock, journal: filepath.Join(data, "journal", minutesRoom+".jsonl"), ring: filepath.Join(data, store.KeyringFile)}
}

func (s *apiServer) token(t *testing.T, identity string, role auth.Role, seat int) string {
	t.Helper()
	return s.Token(t, minutesRoom, identity, role, seat)
}

// do sends a request at the given time of the session and returns the status and body.
func (s *apiServer) do(t *testing.T, at time.Time, method, path, token string, body any) (int, []byte) {
	t.Helper()
	if !at.IsZero() {
		s.clock.set(at)
	}
	return s.Call(t, method, path, token, body)
}

func (s *apiServer) must(t *testing.T, at time.Time, method, path, token string, body any) []byte {
	t.Helper()
	status, out := s.do(t, at, method, path, token, body)
	if status != 200 {
		t.Fatalf("%s %s: %d %s", method, path, status, out)
	}
	return out
}

// holdSession runs a short sitting of a community council through the API, from 18 h 30 to
// 19 h 05 Paris time on 5 March 2026: three members in the chamber, two verified remote
// members, a proxy, one item and one roll-call vote.
func holdSession(t *testing.T, s *apiServer) {
	t.Helper()
	roster, err := os.ReadFile("../../docs/example-roster.csv")
	if err != nil {
		t.Fatal(err)
	}
	at := func(hh, mm int) time.Time { return time.Date(2026, 3, 5, hh, mm, 0, 0, time.UTC) }
	chair := s.token(t, "anne", auth.RoleChair, 1)
	clerk := s.token(t, "greffe", auth.RoleClerk, 0)
	room := "/api/rooms/" + minutesRoom

	s.must(t, at(17, 30), "POST", room+"/session", clerk, map[string]any{
		"body":  map[string]string{"name": "Conseil communautaire de la Vallée", "kind": "epci", "profile": "fr-epci-visio"},
		"title": "Séance du 5 mars 2026", "location": "Hôtel communautaire", "chair": 1, "secretary": 3,
		"rosterCsv": string(roster),
	})
	for _, seat := range []int{1, 2, 3} {
		s.must(t, at(17, 31), "POST", room+"/attendance/arrival", clerk, map[string]any{"seat": seat, "place": "chamber"})
	}
	for _, seat := range []int{4, 5} {
		s.must(t, at(17, 32), "POST", room+"/attendance/arrival", clerk, map[string]any{"seat": seat, "place": "remote"})
	}
	for _, seat := range []int{4, 5} {
		s.must(t, at(17, 33), "POST", room+"/attendance/verify", clerk, map[string]any{"seat": seat})
	}
	s.must(t, at(17, 34), "POST", room+"/proxies", clerk, map[string]any{"giver": 6, "holder": 2})
	s.must(t, at(17, 35), "POST", room+"/items", chair, map[string]any{"id": "1", "title": "Budget annexe de l'eau <DM n° 1>"})
	s.must(t, at(17, 40), "POST", room+"/items/1/open", chair, nil)
	s.must(t, at(17, 45), "POST", room+"/votes", chair, map[string]any{"id": "1-1", "item": "1", "mode": "roll-call", "question": "Adopter la DM n° 1"})
	ballots := room + "/votes/1-1/ballots"
	s.must(t, at(17, 46), "POST", ballots, s.token(t, "david", auth.RoleMember, 4), map[string]any{"choice": "for"})
	s.must(t, at(17, 46), "POST", ballots, s.token(t, "emma", auth.RoleMember, 5), map[string]any{"choice": "against"})
	bruno := s.token(t, "bruno", auth.RoleMember, 2)
	s.must(t, at(17, 47), "POST", ballots, bruno, map[string]any{"choice": "for"})
	s.must(t, at(17, 47), "POST", ballots, bruno, map[string]any{"seat": 6, "choice": "for"})
	s.must(t, at(17, 48), "POST", ballots, chair, map[string]any{"seat": 1, "choice": "for"})
	s.must(t, at(17, 48), "POST", ballots, chair, map[string]any{"seat": 3, "choice": "abstain"})
	s.must(t, at(17, 50), "POST", room+"/votes/1-1/close", chair, nil)
	s.must(t, at(17, 55), "POST", room+"/items/1/close", chair, nil)
	s.must(t, at(18, 5), "POST", room+"/session/close", chair, nil)
}

// minutes runs the command and returns its stdout and stderr.
func minutes(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"minutes"}, args...), &out, &errOut, noEnv)
	return out.String(), errOut.String(), err
}

// lineStarting returns the first line of text that starts with prefix, or "".
func lineStarting(text, prefix string) string {
	for l := range strings.Lines(text) {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimRight(l, "\n")
		}
	}
	return ""
}

func TestMinutesFromAJournalWrittenThroughTheAPI(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	s := startAPIServer(t, paris)
	holdSession(t, s)
	clerk := s.token(t, "greffe", auth.RoleClerk, 0)

	md, stderr, err := minutes(t, "--journal", s.journal, "--tz", "Europe/Paris")
	if err != nil {
		t.Fatalf("minutes: %v\n%s", err, stderr)
	}
	// The offline command and the server's download say the same thing, to the byte.
	for _, c := range []struct{ query, format, lang string }{
		{"format=md", "md", "fr"},
		{"format=html", "html", "fr"},
		{"format=md&lang=en", "md", "en"},
		{"format=html&lang=en", "html", "en"},
	} {
		want := s.must(t, time.Time{}, "GET", "/api/rooms/"+minutesRoom+"/minutes?"+c.query, clerk, nil)
		got, _, err := minutes(t, "--journal", s.journal, "--tz", "Europe/Paris", "--format", c.format, "--lang", c.lang)
		if err != nil {
			t.Fatalf("minutes --format %s --lang %s: %v", c.format, c.lang, err)
		}
		if got != string(want) {
			t.Errorf("--format %s --lang %s differs from GET minutes?%s:\n--- command\n%s\n--- API\n%s", c.format, c.lang, c.query, got, want)
		}
	}

	// Names per choice, proxies, attendance and times in the council's zone.
	for prefix, wants := range map[string][]string{
		"- **Pour (4)":        {"Anne Morel", "Bruno Lefèvre", "David Roussel", "François Perrin (pouvoir à Bruno Lefèvre)"},
		"- **Contre (1)":      {"Emma Faure"},
		"- **Abstentions (1)": {"Chloé Garnier"},
		"- **Ouverture** :":   {"18 h 30"},
		"- **Clôture** :":     {"19 h 05"},
		"- **Date** :":        {"jeudi 5 mars 2026"},
		"- **Présidence** :":  {"Anne Morel"},
		"- **Secrétaire":      {"Chloé Garnier"},
		"- François Perrin":   {"a donné pouvoir à Bruno Lefèvre"},
		"- David Roussel":     {"identité vérifiée à 18 h 33"},
		"- **Quorum** :":      {"5 présents, 4 requis sur 7"},
		"**Adopté":            {"Suffrages exprimés : 5"},
	} {
		line := lineStarting(md, prefix)
		for _, w := range wants {
			if !strings.Contains(line, w) {
				t.Errorf("minutes line %q lacks %q\n%s", line, w, md)
			}
		}
	}
	if !strings.Contains(md, "## Absents (1)\n\n- Gaëlle Henry\n") {
		t.Errorf("Gaëlle Henry is not the one absent member:\n%s", md)
	}

	// What was checked is said on stderr: the entry count and the last hash, to anchor the record.
	raw, err := os.ReadFile(s.journal)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var last store.Entry
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "hash chain intact") || !strings.Contains(stderr, last.Hash) ||
		!strings.Contains(stderr, " "+strconv.Itoa(len(lines))+" entries") {
		t.Errorf("stderr %q does not report %d entries and the last hash %s", stderr, len(lines), last.Hash)
	}
	if strings.Contains(stderr, "not closed") {
		t.Errorf("a closed session reported as open: %q", stderr)
	}

	// --tz moves every time, the date included.
	utc, _, err := minutes(t, "--journal", s.journal, "--tz", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	if l := lineStarting(utc, "- **Ouverture** :"); !strings.Contains(l, "17 h 30") {
		t.Errorf("--tz UTC: %q, want 17 h 30", l)
	}
	tokyo, _, err := minutes(t, "--journal", s.journal, "--tz", "Asia/Tokyo", "--lang", "en")
	if err != nil {
		t.Fatal(err)
	}
	if l := lineStarting(tokyo, "- **Opened**:"); !strings.Contains(l, "02:30") {
		t.Errorf("--tz Asia/Tokyo: %q, want 02:30", l)
	}
	if l := lineStarting(tokyo, "- **Date**:"); !strings.Contains(l, "Friday 6 March 2026") {
		t.Errorf("--tz Asia/Tokyo: %q, want the next day", l)
	}

	// HTML escapes what members typed.
	page, _, err := minutes(t, "--journal", s.journal, "--format", "html")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page, "&lt;DM n° 1&gt;") || strings.Contains(page, "<DM n° 1>") {
		t.Errorf("item title not escaped in HTML:\n%s", page)
	}
}

func TestMinutesRefuseAnAlteredJournal(t *testing.T) {
	s := startAPIServer(t, time.UTC)
	holdSession(t, s)
	raw, err := os.ReadFile(s.journal)
	if err != nil {
		t.Fatal(err)
	}
	// Turn Emma Faure's vote against into a vote for, as someone editing the file would.
	lines := strings.SplitAfter(string(raw), "\n")
	altered := -1
	for i, l := range lines {
		if strings.Contains(l, `"type":"ballot.cast"`) && strings.Contains(l, `"choice":"against"`) {
			lines[i] = strings.Replace(l, `"choice":"against"`, `"choice":"for"`, 1)
			altered = i + 1
		}
	}
	if altered < 0 {
		t.Fatal("no ballot against in the journal")
	}
	path := filepath.Join(t.TempDir(), "altered.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := minutes(t, "--journal", path)
	if err == nil {
		t.Fatal("minutes written from an altered journal")
	}
	if want := "entry " + strconv.Itoa(altered) + ": hash mismatch"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the altered entry (%q)", err, want)
	}
	if out != "" {
		t.Errorf("something was written to stdout: %q", out)
	}
}

func TestMinutesLeaveOutAnIncompleteLastLine(t *testing.T) {
	s := startAPIServer(t, time.UTC)
	holdSession(t, s)
	whole, _, err := minutes(t, "--journal", s.journal, "--tz", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(s.journal)
	if err != nil {
		t.Fatal(err)
	}
	// What a crash in the middle of a write leaves: the start of a line, never acknowledged.
	path := filepath.Join(t.TempDir(), "torn.jsonl")
	if err := os.WriteFile(path, append(raw, []byte(`{"journal":"cc-vallee","seq":99,"at":"2026-03`)...), 0o600); err != nil {
		t.Fatal(err)
	}
	got, stderr, err := minutes(t, "--journal", path, "--keys", s.ring, "--tz", "UTC")
	if err != nil {
		t.Fatalf("torn tail refused: %v", err)
	}
	if got != whole {
		t.Errorf("minutes differ once an incomplete line is added:\n%s\n---\n%s", got, whole)
	}
	if !strings.Contains(stderr, "warning") || !strings.Contains(stderr, "incomplete") {
		t.Errorf("no warning about the incomplete line: %q", stderr)
	}

	// A session cut short (the first ten entries of a sound journal) is drafted and said open.
	lines := strings.SplitAfter(string(raw), "\n")
	short := filepath.Join(t.TempDir(), "short.jsonl")
	if err := os.WriteFile(short, []byte(strings.Join(lines[:10], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	md, stderr, err := minutes(t, "--journal", short)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "not closed") || !strings.Contains(md, "Anne Morel") {
		t.Errorf("open session: stderr %q, minutes:\n%s", stderr, md)
	}
}

// writeJournal appends events (or raw entries) to a fresh journal with the store itself.
func writeJournal(t *testing.T, name string, entries ...func() (string, json.RawMessage)) string {
	t.Helper()
	dir := t.TempDir()
	j, err := store.OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 5, 17, 30, 0, 0, time.UTC)
	for i, e := range entries {
		typ, data := e()
		if _, err := j.Append(context.Background(), name, uint64(i+1), at, typ, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name+".jsonl")
}

func event(t *testing.T, ev council.Event) func() (string, json.RawMessage) {
	return func() (string, json.RawMessage) {
		typ, data, err := council.EncodeEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		return typ, data
	}
}

func TestMinutesRefuseWhatIsNotASessionTheyCanReplay(t *testing.T) {
	at := time.Date(2026, 3, 5, 17, 30, 0, 0, time.UTC)
	opened := func(profile string) council.SessionOpened {
		return council.SessionOpened{
			Header:  council.Header{At: at, By: council.Actor{Identity: "greffe", Role: council.RoleClerk}},
			Sitting: council.Sitting{Body: council.Body{Name: "Conseil municipal", Profile: profile}, Title: "Séance", Chair: 1},
			Roster:  []council.Seat{{Number: 1, Name: "Anne Morel"}},
		}
	}
	cases := []struct {
		name, path, want string
	}{
		{"unknown profile", writeJournal(t, "lune", event(t, opened("fr-lune"))), `legal profile "fr-lune"`},
		{"not a council journal", writeJournal(t, "other", func() (string, json.RawMessage) {
			return "note", json.RawMessage(`{"text":"hello"}`)
		}), `entry 1: decode event: unknown type "note"`},
		{"no opening", writeJournal(t, "noopen", event(t, council.SessionClosed{Header: council.Header{At: at}})), "not session.opened"},
		{"empty file", func() string {
			p := filepath.Join(t.TempDir(), "empty.jsonl")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}(), "has no entry"},
		{"missing file", filepath.Join(t.TempDir(), "absent.jsonl"), "no journal file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := minutes(t, "--journal", c.path)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			if out != "" {
				t.Errorf("stdout %q", out)
			}
		})
	}
	// The same opening under a shipped profile is fine: the refusal above was for the profile.
	if _, _, err := minutes(t, "--journal", writeJournal(t, "terre", event(t, opened("fr-commune")))); err != nil {
		t.Fatalf("shipped profile: %v", err)
	}
}

func TestMinutesFlagsAreCheckedBeforeReading(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--journal FILE is required"},
		{[]string{"--journal", "x.jsonl", "--format", "pdf"}, `--format "pdf"`},
		{[]string{"--journal", "x.jsonl", "--lang", "de"}, `--lang "de"`},
		{[]string{"--journal", "x.jsonl", "--tz", "Mars/Olympus_Mons"}, `--tz "Mars/Olympus_Mons"`},
		{[]string{"--journal", "x.jsonl", "extra"}, "unexpected arguments"},
	} {
		out, _, err := minutes(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("minutes %v: got %v, want an error containing %q", c.args, err, c.want)
		}
		if out != "" {
			t.Errorf("minutes %v wrote %q", c.args, out)
		}
	}
}
