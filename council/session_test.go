package council_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/council"
)

const clerkRoster = `seat,name,group,role
1,Jeanne Martin,Ensemble,présidente
2,Paul Durand,Ensemble,vice-président
3,Amina Benali,Ensemble,conseillère
4,Luc Moreau,Avenir,conseiller
5,Sophie Leroy,Avenir,conseillère
6,<b>Marc</b> & Fils,Avenir,conseiller
7,Claire Petit,Ensemble,conseillère
8,Hugo Roux,,conseiller
9,,,
`

// fullSession runs a short EPCI session touching every kind of event.
func fullSession(t testing.TB) *sitting {
	t.Helper()
	r, err := council.ParseRoster(strings.NewReader(clerkRoster))
	if err != nil {
		t.Fatal(err)
	}
	s := newSittingWith(t, loadProfile(t, "fr-epci-visio"), r, false)
	s.arrive(1, 3)
	s.do(council.RecordArrival{Header: s.clerk(), Seat: 6, Place: council.InChamber})
	s.connect(4, 4)
	s.do(council.GiveProxy{Header: s.clerk(), Giver: 7, Holder: 2})
	s.addItem("1", "")
	s.addItem("2", "budget-primitif")
	s.addItem("3", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "1"})
	s.do(council.RequestFloor{Header: s.member(3), Seat: 3, Kind: council.Speak})
	s.do(council.RequestFloor{Header: s.member(4), Seat: 4, Kind: council.PointOfOrder})
	s.do(council.GrantFloor{Header: s.chair()})
	s.do(council.GrantFloor{Header: s.chair()})
	s.do(council.EndFloor{Header: s.chair()})
	s.do(council.OpenVote{Header: s.chair(), ID: "1-1", Item: "1", Mode: council.RollCall, Question: "Approuver la convention"})
	s.do(council.CastBallot{Header: s.chair(), Vote: "1-1", Seat: 1, Choice: council.For})
	s.do(council.CastBallot{Header: s.member(2), Vote: "1-1", Seat: 2, Choice: council.For})
	s.do(council.CastBallot{Header: s.member(2), Vote: "1-1", Seat: 7, Choice: council.Against})
	s.do(council.CastBallot{Header: s.clerk(), Vote: "1-1", Seat: 3, Choice: council.Abstain})
	s.do(council.CastBallot{Header: s.member(4), Vote: "1-1", Seat: 4, Choice: council.Against})
	s.do(council.CastBallot{Header: s.member(6), Vote: "1-1", Seat: 6, Choice: council.NotVoting})
	s.do(council.CloseVote{Header: s.chair(), Vote: "1-1"})
	s.do(council.CloseItem{Header: s.chair(), ID: "1"})
	s.refused(council.OpenItem{Header: s.chair(), ID: "2"}, council.ErrInPersonOnly)
	s.do(council.PostponeItem{Header: s.chair(), ID: "2", Reason: "budget à voter en séance présentielle"})
	s.do(council.ChangeChair{Header: s.chair(), Seat: 2})
	s.do(council.OpenItem{Header: s.chair(), ID: "3"})
	s.do(council.RequestSecretBallot{Header: s.chair(), Item: "3", Requesters: 2})
	s.do(council.RecordDeparture{Header: s.clerk(), Seat: 4, Reason: council.ConnectionLost})
	s.do(council.CloseSession{Header: s.chair()})
	return s
}

func TestReplayFromJSONGivesTheSameState(t *testing.T) {
	s := fullSession(t)
	data, err := council.MarshalEvents(s.journal)
	if err != nil {
		t.Fatal(err)
	}
	events, err := council.UnmarshalEvents(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(events, s.journal) {
		t.Fatal("decoded events differ from the recorded ones")
	}
	// The journal carries the roster, so replay needs only the profile.
	replayed, err := council.Replay(s.p, council.Roster{}, events)
	if err != nil {
		t.Fatal(err)
	}
	now := s.now.Add(time.Hour)
	a, _ := json.Marshal(s.st.View(now))
	b, _ := json.Marshal(replayed.View(now))
	if !bytes.Equal(a, b) {
		t.Fatalf("replayed view differs:\n%s\n%s", a, b)
	}
	if !reflect.DeepEqual(council.DraftMinutes(s.st, nil), council.DraftMinutes(replayed, nil)) {
		t.Fatal("replayed minutes differ")
	}
	// Each event also goes through the journal's (type, data) form.
	for i, e := range s.journal {
		typ, raw, err := council.EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		back, err := council.DecodeEvent(typ, raw)
		if err != nil || !reflect.DeepEqual(back, e) {
			t.Fatalf("event %d (%s) does not round-trip: %v", i+1, typ, err)
		}
	}
}

func TestReplayRefusesIncoherentJournals(t *testing.T) {
	s := fullSession(t)
	t.Run("other profile", func(t *testing.T) {
		_, err := council.Replay(loadProfile(t, "fr-commune"), council.Roster{}, s.journal)
		if err == nil || !strings.Contains(err.Error(), `held under profile "fr-epci-visio"`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("other roster", func(t *testing.T) {
		_, err := council.Replay(s.p, seats(9), s.journal)
		if err == nil || !strings.Contains(err.Error(), "roster") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("time running backwards", func(t *testing.T) {
		events := append([]council.Event(nil), s.journal...)
		events[3], events[4] = events[4], events[3]
		_, err := council.Replay(s.p, council.Roster{}, events)
		if err == nil || !strings.Contains(err.Error(), "event 5") || !strings.Contains(err.Error(), "before the previous event") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a ballot twice", func(t *testing.T) {
		var i int
		for i = range s.journal {
			if _, ok := s.journal[i].(council.BallotCast); ok {
				break
			}
		}
		events := append([]council.Event(nil), s.journal[:i+1]...)
		events = append(events, s.journal[i])
		_, err := council.Replay(s.p, council.Roster{}, events)
		if err == nil || !strings.Contains(err.Error(), "already voted") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a result that does not match the ballots", func(t *testing.T) {
		events := append([]council.Event(nil), s.journal...)
		for i, e := range events {
			if vc, ok := e.(council.VoteClosed); ok {
				vc.Result.For++
				events[i] = vc
			}
		}
		_, err := council.Replay(s.p, council.Roster{}, events)
		if err == nil || !strings.Contains(err.Error(), "differ from the ballots") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestDecodeEventIsStrict(t *testing.T) {
	if _, err := council.DecodeEvent("member.teleported", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), `unknown type "member.teleported"`) {
		t.Fatalf("err = %v", err)
	}
	_, err := council.DecodeEvent("member.arrived", []byte(`{"at":"2025-10-14T18:00:00Z","by":{"identity":"c","role":"clerk"},"seat":3,"place":"chamber","mood":"good"}`))
	if err == nil || !strings.Contains(err.Error(), "mood") {
		t.Fatalf("err = %v", err)
	}
	e, err := council.DecodeEvent("member.arrived", []byte(`{"at":"2025-10-14T18:00:00Z","by":{"identity":"c","role":"clerk"},"seat":3,"place":"chamber"}`))
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := e.(council.MemberArrived); !ok || a.Seat != 3 || a.Place != council.InChamber || a.By.Role != council.RoleClerk {
		t.Fatalf("decoded %#v", e)
	}
}

func TestEventJSONIsStable(t *testing.T) {
	// The journal's JSON is a public format: field names must not drift.
	e := council.BallotCast{Header: council.Header{At: opening, By: council.Actor{Identity: "m2", Seat: 2, Role: council.RoleMember}},
		Vote: "1-1", Seat: 7, Choice: council.Against, CastBy: 2}
	typ, data, err := council.EncodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"at":"2025-10-14T18:00:00Z","by":{"identity":"m2","seat":2,"role":"member"},"vote":"1-1","seat":7,"choice":"against","castBy":2}`
	if typ != "ballot.cast" || string(data) != want {
		t.Fatalf("got %s %s\nwant ballot.cast %s", typ, data, want)
	}
}

func TestMinutes(t *testing.T) {
	s := fullSession(t)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	m := council.DraftMinutes(s.st, paris)

	names := func(vs []council.Voter) []string {
		var out []string
		for _, v := range vs {
			n := v.Name
			if v.By != nil {
				n += " by " + v.By.Name
			}
			out = append(out, n)
		}
		return out
	}
	v := m.Items[0].Votes[0]
	if got := names(v.For); !reflect.DeepEqual(got, []string{"Jeanne Martin", "Paul Durand"}) {
		t.Errorf("for = %v", got)
	}
	if got := names(v.Against); !reflect.DeepEqual(got, []string{"Luc Moreau", "Claire Petit by Paul Durand"}) {
		t.Errorf("against = %v", got)
	}
	if got := names(v.Abstain); !reflect.DeepEqual(got, []string{"Amina Benali"}) {
		t.Errorf("abstain = %v", got)
	}
	if got := names(v.NotVoting); !reflect.DeepEqual(got, []string{"<b>Marc</b> & Fils"}) {
		t.Errorf("not voting = %v", got)
	}
	// 2 for, 2 against: tie, the chair (seat 1) voted for.
	if v.Result == nil || !v.Result.Adopted || !v.Result.CastingVote {
		t.Errorf("result = %+v", v.Result)
	}
	if m.Chair == nil || m.Chair.Name != "Jeanne Martin" || len(m.ChairChanges) != 1 || m.ChairChanges[0].Member.Name != "Paul Durand" {
		t.Errorf("chair = %+v, changes %+v", m.Chair, m.ChairChanges)
	}
	if m.Secretary == nil || m.Secretary.Name != "Paul Durand" {
		t.Errorf("secretary = %+v", m.Secretary)
	}
	attendees := func(as []council.Attendee) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.Name)
		}
		return out
	}
	if got := attendees(m.Chamber); !reflect.DeepEqual(got, []string{"Jeanne Martin", "Paul Durand", "Amina Benali", "<b>Marc</b> & Fils"}) {
		t.Errorf("chamber = %v", got)
	}
	if got := attendees(m.Remote); !reflect.DeepEqual(got, []string{"Luc Moreau"}) || m.Remote[0].Periods[0].Reason != council.ConnectionLost {
		t.Errorf("remote = %v", m.Remote)
	}
	if len(m.Represented) != 1 || m.Represented[0].Giver.Name != "Claire Petit" || m.Represented[0].Holder.Name != "Paul Durand" {
		t.Errorf("represented = %+v", m.Represented)
	}
	var absent []string
	for _, a := range m.Absent {
		absent = append(absent, a.Name)
	}
	if !reflect.DeepEqual(absent, []string{"Sophie Leroy", "Hugo Roux"}) {
		t.Errorf("absent = %v", absent)
	}
	if q := m.Items[0].Quorum; q == nil || q.Counted != 5 || q.Required != 5 || q.InOffice != 8 {
		t.Errorf("quorum at item 1 = %+v", q)
	}
	if m.Items[1].Status != council.StatusPostponed || m.Items[2].Status != council.StatusPostponed {
		t.Errorf("items 2 and 3 should be postponed: %+v", m.Items)
	}
	if m.OpenedAt.Location() != paris || m.OpenedAt.Hour() != 20 { // 18:01 UTC in October is 20:01 in Paris
		t.Errorf("opened at %v", m.OpenedAt)
	}

	var md bytes.Buffer
	if err := m.WriteMarkdown(&md, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# Procès-verbal — Conseil municipal de Test — Séance ordinaire",
		"Conseil municipal de Test",
		"mardi 14 octobre 2025",
		"**Pour (2)** : Jeanne Martin, Paul Durand",
		"**Contre (2)** : Luc Moreau, Claire Petit (pouvoir à Paul Durand)",
		"**Abstentions (1)** : Amina Benali",
		"\\<b\\>Marc\\</b\\> \\& Fils",
		"Adopté (voix prépondérante du président)",
		"Claire Petit a donné pouvoir à Paul Durand",
		"connexion perdue",
		"atteint : 5 présents, 5 requis sur 8 membres en exercice",
		"Paul Durand préside à partir de",
		"Temps de parole",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if strings.Contains(md.String(), "<b>") {
		t.Error("markdown lets raw HTML through")
	}

	var html bytes.Buffer
	if err := m.WriteHTML(&html, nil); err != nil {
		t.Fatal(err)
	}
	h := html.String()
	for _, want := range []string{`<html lang="fr">`, "&lt;b&gt;Marc&lt;/b&gt; &amp; Fils", "Jeanne Martin, Paul Durand", "Claire Petit (pouvoir à Paul Durand)"} {
		if !strings.Contains(h, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	if strings.Contains(h, "<b>Marc") {
		t.Error("html does not escape names")
	}

	en := council.EnglishLabels()
	md.Reset()
	if err := m.WriteMarkdown(&md, &en); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "**For (2)**: Jeanne Martin, Paul Durand") || !strings.Contains(md.String(), "Tuesday 14 October 2025") {
		t.Errorf("english markdown:\n%s", md.String())
	}
}

func TestMarkdownEscapesLeadingSyntax(t *testing.T) {
	s := newSitting(t, "generic", 5)
	s.do(council.AddItem{Header: s.chair(), ID: "1", Title: "1. Budget *primitif*"})
	var md bytes.Buffer
	if err := council.DraftMinutes(s.st, nil).WriteMarkdown(&md, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), `Point 1 — 1. Budget \*primitif\*`) {
		t.Fatalf("markdown:\n%s", md.String())
	}
}

func TestRuleErrorKinds(t *testing.T) {
	s := newSitting(t, "fr-commune", 33)
	err := s.try(council.GiveProxy{Header: s.clerk(), Giver: 40, Holder: 1})
	var re *council.RuleError
	if !errors.As(err, &re) || !errors.Is(err, council.ErrUnknown) || err.Error() != "seat 40 is not in the roster" {
		t.Fatalf("err = %v", err)
	}
	// Commands cannot go back in time.
	err = s.try(council.RecordArrival{Header: council.Header{At: opening, By: council.Actor{Role: council.RoleClerk}}, Seat: 3, Place: council.InChamber})
	if !errors.Is(err, council.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
}
