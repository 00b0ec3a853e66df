package council_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/configs/profiles"
	"github.com/ingeco/hemicycle/council"
)

// loadProfile parses a shipped profile: the tests check the data councils
// will actually run, not a copy of it.
func loadProfile(t testing.TB, id string) *council.Profile {
	t.Helper()
	b, err := profiles.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	p, err := council.ParseProfile(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// seats builds a roster of n members in office, seat i named "Member i".
func seats(n int) council.Roster {
	var r council.Roster
	for i := 1; i <= n; i++ {
		r.Seats = append(r.Seats, council.Seat{Number: i, Name: fmt.Sprintf("Member %d", i), Group: "G"})
	}
	return r
}

// sitting drives one session with a clock that moves a minute per command,
// and keeps every event recorded, as a journal would.
type sitting struct {
	t       testing.TB
	p       *council.Profile
	roster  council.Roster
	st      *council.State
	now     time.Time
	journal []council.Event
}

var opening = time.Date(2025, 10, 14, 18, 0, 0, 0, time.UTC)

// newSitting opens a session of an n-member body under the profile, seat 1
// in the chair and seat 2 as secretary.
func newSitting(t *testing.T, profileID string, n int) *sitting {
	t.Helper()
	return newSittingWith(t, loadProfile(t, profileID), seats(n), false)
}

func newSittingWith(t testing.TB, p *council.Profile, r council.Roster, second bool) *sitting {
	t.Helper()
	st, err := council.NewState(p, r)
	if err != nil {
		t.Fatal(err)
	}
	s := &sitting{t: t, p: p, roster: r, st: st, now: opening}
	s.do(council.OpenSession{Header: s.chair(), Sitting: council.Sitting{
		Body:  council.Body{Name: "Conseil municipal de Test", Kind: "commune", Profile: p.ID},
		Title: "Séance ordinaire", Location: "Salle du conseil", Chair: 1, Secretary: 2, SecondConvocation: second}})
	return s
}

// tick moves the clock on and returns a header for the actor.
func (s *sitting) tick(a council.Actor) council.Header {
	s.now = s.now.Add(time.Minute)
	return council.Header{At: s.now, By: a}
}

func (s *sitting) chair() council.Header {
	return s.tick(council.Actor{Identity: "chair", Seat: 1, Role: council.RoleChair})
}

func (s *sitting) clerk() council.Header {
	return s.tick(council.Actor{Identity: "clerk", Role: council.RoleClerk})
}

func (s *sitting) member(seat int) council.Header {
	return s.tick(council.Actor{Identity: fmt.Sprintf("member-%d", seat), Seat: seat, Role: council.RoleMember})
}

// try runs a command and records its events if it was accepted.
func (s *sitting) try(c council.Command) error {
	events, err := s.st.Execute(c)
	if err == nil {
		s.journal = append(s.journal, events...)
	}
	return err
}

// do runs a command that must be accepted.
func (s *sitting) do(c council.Command) []council.Event {
	s.t.Helper()
	events, err := s.st.Execute(c)
	if err != nil {
		s.t.Fatalf("%T refused: %v", c, err)
	}
	s.journal = append(s.journal, events...)
	return events
}

// refused runs a command that must be refused with the given kind.
func (s *sitting) refused(c council.Command, kind error) error {
	s.t.Helper()
	err := s.try(c)
	if err == nil {
		s.t.Fatalf("%T accepted, want refusal (%v)", c, kind)
	}
	if !errors.Is(err, kind) {
		s.t.Fatalf("%T refused with %v, want kind %v", c, err, kind)
	}
	return err
}

// arrive records seats from..to as arriving in the chamber.
func (s *sitting) arrive(from, to int) {
	s.t.Helper()
	for i := from; i <= to; i++ {
		s.do(council.RecordArrival{Header: s.clerk(), Seat: i, Place: council.InChamber})
	}
}

// connect records seats from..to as remote and verified by the clerk.
func (s *sitting) connect(from, to int) {
	s.t.Helper()
	for i := from; i <= to; i++ {
		s.do(council.RecordArrival{Header: s.member(i), Seat: i, Place: council.Remote})
		s.do(council.VerifyRemote{Header: s.clerk(), Seat: i})
	}
}

func (s *sitting) addItem(id, kind string) {
	s.t.Helper()
	s.do(council.AddItem{Header: s.chair(), ID: id, Title: "Item " + id, Kind: kind})
}

// ballots casts one choice per seat, each member voting for their own seat.
func (s *sitting) ballots(vote string, choice council.Choice, seats ...int) {
	s.t.Helper()
	for _, seat := range seats {
		s.do(council.CastBallot{Header: s.member(seat), Vote: vote, Seat: seat, Choice: choice})
	}
}

func span(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func (s *sitting) result(vote string) council.Result {
	s.t.Helper()
	v, ok := s.st.Vote(vote)
	if !ok || v.Result == nil {
		s.t.Fatalf("vote %q has no result", vote)
	}
	return *v.Result
}

func readProfile(id string) ([]byte, error) { return profiles.Read(id) }
