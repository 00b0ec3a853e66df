package council_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/council"
)

// A suspended sitting takes up nothing: no item, no vote, no floor, until it resumes; it is
// not suspended during a vote, and the speech under way ends.
func TestSuspensionAndResumption(t *testing.T) {
	s := newSitting(t, "fr-commune", 9)
	s.arrive(1, 9)
	s.addItem("1", "")
	s.addItem("2", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "1"})
	s.do(council.OpenVote{Header: s.chair(), ID: "1-1", Item: "1", Mode: council.ShowOfHands})
	s.refused(council.SuspendSitting{Header: s.chair()}, council.ErrState)
	s.ballots("1-1", council.For, span(1, 9)...)
	s.do(council.CloseVote{Header: s.chair(), Vote: "1-1"})
	s.do(council.CloseItem{Header: s.chair(), ID: "1"})
	s.do(council.GrantFloor{Header: s.chair(), Seat: 4})

	h := s.chair()
	s.do(council.SuspendSitting{Header: h, Reason: "incident in the public gallery"})
	if _, _, speaking := s.st.FloorHolder(); speaking {
		t.Fatal("the speech under way did not end with the suspension")
	}
	for _, c := range []council.Command{
		council.OpenItem{Header: s.chair(), ID: "2"},
		council.GrantFloor{Header: s.chair(), Seat: 5},
		council.SuspendSitting{Header: s.chair()},
	} {
		err := s.refused(c, council.ErrState)
		if !strings.Contains(err.(*council.RuleError).In("fr"), "suspendue") {
			t.Fatalf("%T: French refusal %q", c, err.(*council.RuleError).In("fr"))
		}
	}
	back := s.chair()
	s.do(council.ResumeSitting{Header: back})
	s.refused(council.ResumeSitting{Header: s.chair()}, council.ErrState)
	s.do(council.OpenItem{Header: s.chair(), ID: "2"})
	sess := s.st.Session()
	if sess.Suspended || len(sess.Suspensions) != 1 || !sess.Suspensions[0].From.Equal(h.At) || !sess.Suspensions[0].To.Equal(back.At) ||
		sess.Suspensions[0].Reason != "incident in the public gallery" {
		t.Fatalf("suspensions %+v, want one from %s to %s", sess.Suspensions, h.At, back.At)
	}
}

// CGCT L2121-17: the quorum is assessed at each item; losing it while the item is open is
// recorded with the time and the figures, and so is regaining it.
func TestQuorumLostDuringAnItemIsRecorded(t *testing.T) {
	s := newSitting(t, "fr-commune", 9)
	s.arrive(1, 5)
	s.addItem("1", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "1"})
	gone := s.clerk()
	s.do(council.RecordDeparture{Header: gone, Seat: 5, Reason: council.LeftSession})
	back := s.clerk()
	s.do(council.RecordArrival{Header: back, Seat: 6, Place: council.InChamber})
	it, _ := s.st.Item("1")
	if len(it.QuorumIncidents) != 2 {
		t.Fatalf("incidents %+v, want lost then regained", it.QuorumIncidents)
	}
	lost, regained := it.QuorumIncidents[0], it.QuorumIncidents[1]
	if !lost.Lost || !lost.At.Equal(gone.At) || lost.Quorum.Counted != 4 || lost.Quorum.Required != 5 || lost.Quorum.Reached {
		t.Fatalf("loss recorded as %+v, want at %s with 4 present of 5 required", lost, gone.At)
	}
	if regained.Lost || !regained.At.Equal(back.At) || regained.Quorum.Counted != 5 {
		t.Fatalf("return recorded as %+v, want at %s with 5 present", regained, back.At)
	}
}

// CGCT L2121-17 al. 2: without a quorum the council is convened again at least three days
// later and then deliberates without one. The sitting closes with the attendance, the items
// not decided are referred, and the date from which the second sitting may be held is given.
func TestSittingClosedForLackOfQuorum(t *testing.T) {
	s := newSitting(t, "fr-commune", 9)
	s.arrive(1, 5)
	s.addItem("1", "")
	s.addItem("2", "")
	s.addItem("3", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "1"})
	s.do(council.OpenVote{Header: s.chair(), ID: "1-1", Item: "1", Mode: council.ShowOfHands})
	s.ballots("1-1", council.For, 1, 2, 3, 4, 5)
	s.do(council.CloseVote{Header: s.chair(), Vote: "1-1"})
	s.do(council.CloseItem{Header: s.chair(), ID: "1"})
	err := s.refused(council.CloseForLackOfQuorum{Header: s.chair()}, council.ErrState)
	if !strings.Contains(err.(*council.RuleError).In("fr"), "le quorum est atteint (5 comptés, 5 requis)") {
		t.Fatalf("French refusal %q", err.(*council.RuleError).In("fr"))
	}
	s.do(council.OpenItem{Header: s.chair(), ID: "2"})
	s.do(council.RecordDeparture{Header: s.clerk(), Seat: 4, Reason: council.LeftSession})
	h := s.chair()
	s.do(council.CloseForLackOfQuorum{Header: h})
	sess := s.st.Session()
	want := time.Date(h.At.Year(), h.At.Month(), h.At.Day()+3, 0, 0, 0, 0, time.UTC)
	if sess.Opened() || sess.ClosedFor != council.ClosedNoQuorum || sess.ClosingQuorum == nil || sess.ClosingQuorum.Counted != 4 ||
		!sess.SecondConvocationFrom.Equal(want) {
		t.Fatalf("closing recorded as %+v, want closed for no quorum with 4 present, second sitting from %s", sess, want)
	}
	for id, status := range map[string]council.ItemStatus{"1": council.StatusClosed, "2": council.StatusPostponed, "3": council.StatusPostponed} {
		if it, _ := s.st.Item(id); it.Status != status {
			t.Fatalf("item %s is %s, want %s", id, it.Status, status)
		}
	}

	// The second convocation deliberates without a quorum: it cannot close for want of one.
	s = newSittingWith(t, loadProfile(t, "fr-commune"), seats(9), true)
	s.arrive(1, 2)
	s.refused(council.CloseForLackOfQuorum{Header: s.chair()}, council.ErrState)
}

// CGCT L2121-18 al. 2: "sur la demande de trois membres ou du maire, le conseil municipal peut
// décider, sans débat, à la majorité absolue des membres présents ou représentés, qu'il se
// réunit à huis clos."
func TestClosedDoorFromTheText(t *testing.T) {
	cases := []struct {
		law          string
		requesters   []int
		for_, agains int
		kind         error // refused with it; nil: voted
		adopted      bool
	}{
		{"L2121-18: two members cannot ask", []int{2, 3}, 6, 3, council.ErrInvalid, false},
		{"L2121-18: three members ask; 6 of the 10 present or represented is an absolute majority", []int{2, 3, 4}, 6, 3, nil, true},
		{"L2121-18: 5 of 10 present or represented is no absolute majority", []int{2, 3, 4}, 5, 4, nil, false},
		{"L2121-18: the mayor asks alone", nil, 6, 0, nil, true},
		{"no more votes than members present or represented", nil, 8, 3, council.ErrInvalid, false},
	}
	for _, c := range cases {
		t.Run(c.law, func(t *testing.T) {
			s := newSitting(t, "fr-commune", 11)
			s.arrive(1, 9)
			s.do(council.GiveProxy{Header: s.clerk(), Giver: 10, Holder: 1})
			cmd := council.VoteClosedDoor{Header: s.chair(), Requesters: c.requesters, For: c.for_, Against: c.agains}
			if c.kind != nil {
				s.refused(cmd, c.kind)
				return
			}
			s.do(cmd)
			sess := s.st.Session()
			d := sess.ClosedDoors[0]
			if sess.ClosedDoor != c.adopted || d.Adopted != c.adopted || d.Counted != 10 || d.Required != 6 {
				t.Fatalf("closed-door vote %+v (closed door now %v), want adopted %v with 6 of 10 required", d, sess.ClosedDoor, c.adopted)
			}
			if !c.adopted {
				s.refused(council.EndClosedDoor{Header: s.chair()}, council.ErrState)
				return
			}
			s.refused(council.VoteClosedDoor{Header: s.chair(), For: 9}, council.ErrState)
			end := s.chair()
			s.do(council.EndClosedDoor{Header: end})
			if sess := s.st.Session(); sess.ClosedDoor || !sess.ClosedDoors[0].To.Equal(end.At) {
				t.Fatalf("closed door after its end: %+v", sess.ClosedDoors)
			}
		})
	}
}

// The procès-verbal records the incidents (CGCT L2121-17, L2121-18): the suspension with its
// reason, the closed-door vote with its figures and duration, the quorum lost during the item
// with the attendance, and the closing for lack of quorum with the second convocation's date.
func TestMinutesRecordTheIncidents(t *testing.T) {
	s := newSitting(t, "fr-commune", 9)
	s.arrive(1, 5)
	s.addItem("1", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "1"})
	suspended := s.chair()
	s.do(council.SuspendSitting{Header: suspended, Reason: "incident en tribune"})
	resumed := s.chair()
	s.do(council.ResumeSitting{Header: resumed})
	closed := s.chair()
	s.do(council.VoteClosedDoor{Header: closed, For: 4, Against: 1})
	opened := s.chair()
	s.do(council.EndClosedDoor{Header: opened})
	s.do(council.VoteClosedDoor{Header: s.chair(), For: 2, Against: 3})
	gone := s.clerk()
	s.do(council.RecordDeparture{Header: gone, Seat: 5, Reason: council.LeftSession})
	end := s.chair()
	s.do(council.CloseForLackOfQuorum{Header: end})
	m := council.DraftMinutes(s.st, time.UTC)

	fr, en := council.FrenchLabels(), council.EnglishLabels()
	clock := func(l council.Labels, h council.Header) string { return h.At.UTC().Format(l.TimeLayout) }
	for _, c := range []struct {
		name   string
		labels council.Labels
		want   []string
	}{
		{"French", fr, []string{
			"## Incidents de séance\n",
			"- Séance suspendue de " + clock(fr, suspended) + " à " + clock(fr, resumed) + " (motif : incident en tribune)\n",
			"- Huis clos (CGCT L2121-18) voté par 4 voix contre 1 (3 requises sur 5 membres présents ou représentés) : séance à huis clos de " + clock(fr, closed) + " à " + clock(fr, opened) + "\n",
			"- Huis clos (CGCT L2121-18) rejeté : 2 voix pour, 3 contre (3 requises sur 5 membres présents ou représentés)",
			"- **Quorum perdu** : " + clock(fr, gone) + " : non atteint : 4 présents, 5 requis sur 9 membres en exercice\n",
			"- **Ajourné** : quorum non atteint : renvoyé à la seconde convocation (CGCT L2121-17)\n",
			"- Séance close faute de quorum à " + clock(fr, end) + " (",
			"seconde convocation (CGCT L2121-17), sans condition de quorum, à partir du ",
		}},
		{"English", en, []string{
			"## Incidents of the sitting\n",
			"- Sitting suspended from " + clock(en, suspended) + " to " + clock(en, resumed) + " (reason: incident en tribune)\n",
			"- Closed-door sitting (CGCT L2121-18) voted by 4 to 1 (3 required of 5 members present or represented)",
			"- **Quorum lost**: " + clock(en, gone) + ": ",
			"- Sitting closed for lack of a quorum at " + clock(en, end),
		}},
	} {
		var b strings.Builder
		if err := m.WriteMarkdown(&b, &c.labels); err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: the minutes lack %q:\n%s", c.name, w, b.String())
			}
		}
	}
}
