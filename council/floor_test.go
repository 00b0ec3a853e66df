package council_test

import (
	"testing"
	"time"

	"github.com/ingeco/hemicycle/council"
)

func queueSeats(q []council.FloorRequest) []int {
	out := make([]int, len(q))
	for i, r := range q {
		out[i] = r.Seat
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFloorQueueOrder(t *testing.T) {
	s := newSitting(t, "fr-commune", 33)
	s.arrive(1, 20)
	s.do(council.RequestFloor{Header: s.member(7), Seat: 7, Kind: council.Speak})
	s.do(council.RequestFloor{Header: s.member(4), Seat: 4, Kind: council.Speak})
	s.do(council.RequestFloor{Header: s.member(9), Seat: 9, Kind: council.PointOfOrder})
	s.do(council.RequestFloor{Header: s.member(5), Seat: 5, Kind: council.Speak})
	s.do(council.RequestFloor{Header: s.member(6), Seat: 6, Kind: council.PointOfOrder})

	// Points of order first, each kind in order of asking.
	if got, want := queueSeats(s.st.FloorQueue()), []int{9, 6, 7, 4, 5}; !equalInts(got, want) {
		t.Fatalf("queue = %v, want %v", got, want)
	}
	s.refused(council.RequestFloor{Header: s.member(7), Seat: 7, Kind: council.Speak}, council.ErrState)
	s.refused(council.RequestFloor{Header: s.member(8), Seat: 3, Kind: council.Speak}, council.ErrNotEntitled)
	s.refused(council.RequestFloor{Header: s.member(25), Seat: 25, Kind: council.Speak}, council.ErrNotPresent)

	s.do(council.GrantFloor{Header: s.chair()}) // next in queue
	if seat, _, ok := s.st.FloorHolder(); !ok || seat != 9 {
		t.Fatalf("floor holder = %d %v, want 9", seat, ok)
	}
	s.do(council.CancelFloorRequest{Header: s.member(4), Seat: 4})
	s.do(council.GrantFloor{Header: s.chair()}) // 9 stops, 6 speaks
	if seat, _, _ := s.st.FloorHolder(); seat != 6 {
		t.Fatalf("floor holder = %d, want 6", seat)
	}
	if got, want := queueSeats(s.st.FloorQueue()), []int{7, 5}; !equalInts(got, want) {
		t.Fatalf("queue = %v, want %v", got, want)
	}
	// The chair may give the floor to someone who did not ask (a rapporteur).
	s.do(council.GrantFloor{Header: s.chair(), Seat: 12})
	s.do(council.EndFloor{Header: s.chair()})
	if _, _, ok := s.st.FloorHolder(); ok {
		t.Fatal("floor still held after the chair withdrew it")
	}
	s.refused(council.EndFloor{Header: s.chair()}, council.ErrState)
}

func TestSpeakingTimeAccumulates(t *testing.T) {
	s := newSitting(t, "fr-commune", 33)
	s.arrive(1, 20)
	// Each command advances the clock by one minute.
	s.do(council.GrantFloor{Header: s.chair(), Seat: 7}) // t0
	s.now = s.now.Add(3 * time.Minute)
	s.do(council.EndFloor{Header: s.member(7)}) // t0 + 4 min: the speaker yields
	s.do(council.GrantFloor{Header: s.chair(), Seat: 8})
	s.do(council.GrantFloor{Header: s.chair(), Seat: 7}) // 8 spoke 1 min; 7 again
	since := s.now
	if got := s.st.SpeakingTime(7, since.Add(90*time.Second)); got != 4*time.Minute+90*time.Second {
		t.Fatalf("speaking time of 7 during the second speech = %v", got)
	}
	if got := s.st.SpeakingTime(8, since.Add(time.Hour)); got != time.Minute {
		t.Fatalf("speaking time of 8 = %v", got)
	}
	// Leaving the session ends the speech.
	s.do(council.RecordDeparture{Header: s.clerk(), Seat: 7})
	if _, _, ok := s.st.FloorHolder(); ok {
		t.Fatal("a departed member still holds the floor")
	}
	if got := s.st.SpeakingTime(7, s.now.Add(time.Hour)); got != 5*time.Minute {
		t.Fatalf("speaking time of 7 after leaving = %v, want 5m", got)
	}
	// A member may not end someone else's speech.
	s.do(council.GrantFloor{Header: s.chair(), Seat: 8})
	s.refused(council.EndFloor{Header: s.member(9)}, council.ErrNotEntitled)
}

func TestFloorControlIsRecordedAndReplayed(t *testing.T) {
	s := newSitting(t, "fr-commune", 33)
	s.arrive(1, 20)
	if s.st.FloorControlled() {
		t.Fatal("floor control is on before anyone set it")
	}
	s.do(council.SetFloorControl{Header: s.chair(), Enabled: true})
	if !s.st.FloorControlled() || !s.st.View(s.now).Floor.Controlled {
		t.Fatal("floor control not on after the chair set it")
	}
	s.refused(council.SetFloorControl{Header: s.chair(), Enabled: true}, council.ErrState)
	s.do(council.SetFloorControl{Header: s.chair(), Enabled: false})
	if s.st.FloorControlled() {
		t.Fatal("floor control still on after the chair switched it off")
	}
}
