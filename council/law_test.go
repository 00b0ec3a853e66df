package council_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/council"
)

// Quorum, from the texts. 33 members in office throughout; seats 1.. are
// filled in order: chamber first, then verified remote, then unverified
// remote, then members represented (their proxies go to members in the
// chamber, at most the profile's cap each).
func TestQuorumFromTheTexts(t *testing.T) {
	cases := []struct {
		law                                      string
		profile                                  string
		chamber, remote, unverified, represented int
		counted, required                        int
		reached                                  bool
	}{
		{"CGCT L2121-17: a majority of the 33 members in office is 17; 16 present is no quorum",
			"fr-commune", 16, 0, 0, 0, 16, 17, false},
		{"CGCT L2121-17: 17 present of 33 is a quorum",
			"fr-commune", 17, 0, 0, 0, 17, 17, true},
		{"CGCT L2121-17: proxies do not count; 16 present and 1 represented is no quorum",
			"fr-commune", 16, 0, 0, 1, 16, 17, false},
		{"Loi 2020-290 art. 10: one third of 33 in office is 11; 10 present is no quorum",
			"fr-2020-emergency", 10, 0, 0, 0, 10, 11, false},
		{"Loi 2020-290 art. 10: present OR represented; 9 present and 2 represented make 11",
			"fr-2020-emergency", 9, 0, 0, 2, 11, 11, true},
		{"Ordonnance 2020-391 art. 6: remote members count as present; 6 in the room and 5 remote make 11",
			"fr-2020-emergency", 6, 5, 0, 0, 11, 11, true},
		{"CGCT L5211-11-1: quorum assessed on members present in the various places; 10 + 7 remote make 17",
			"fr-epci-visio", 10, 7, 0, 0, 17, 17, true},
		{"CGCT L5211-11-1 with the clerk's verification: unverified connections do not count",
			"fr-epci-visio", 10, 6, 1, 0, 16, 17, false},
		{"CGCT L2121-17 applied by L5211-1: proxies do not count in an EPCI either",
			"fr-epci-visio", 16, 0, 0, 1, 16, 17, false},
	}
	for _, c := range cases {
		t.Run(c.law, func(t *testing.T) {
			s := newSitting(t, c.profile, 33)
			s.arrive(1, c.chamber)
			next := c.chamber + 1
			if c.remote > 0 {
				s.connect(next, next+c.remote-1)
				next += c.remote
			}
			for i := 0; i < c.unverified; i++ {
				s.do(council.RecordArrival{Header: s.member(next), Seat: next, Place: council.Remote})
				next++
			}
			for i := 0; i < c.represented; i++ {
				s.do(council.GiveProxy{Header: s.clerk(), Giver: next, Holder: 1 + i, Item: ""})
				next++
			}
			q := s.st.Quorum()
			if q.Counted != c.counted || q.Required != c.required || q.Reached != c.reached || q.InOffice != 33 {
				t.Fatalf("quorum = %+v; want counted %d, required %d, reached %v", q, c.counted, c.required, c.reached)
			}
			// The same verdict when the chair opens an item (L2121-17: checked at each item).
			s.addItem("1", "")
			err := s.try(council.OpenItem{Header: s.chair(), ID: "1"})
			if c.reached != (err == nil) {
				t.Fatalf("opening item: err = %v, want reached = %v", err, c.reached)
			}
			if err != nil && !errors.Is(err, council.ErrNoQuorum) {
				t.Fatalf("opening item refused for another reason: %v", err)
			}
		})
	}
}

func TestQuorumRefusalGivesTheFigures(t *testing.T) {
	// CGCT L2121-17: 16 present of 33 in office.
	s := newSitting(t, "fr-commune", 33)
	s.arrive(1, 16)
	s.addItem("1", "")
	err := s.refused(council.OpenItem{Header: s.chair(), ID: "1"}, council.ErrNoQuorum)
	want := "quorum not reached: 16 present, 17 required of 33 in office"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	var qe *council.QuorumError
	if !errors.As(err, &qe) || qe.Quorum.Counted != 16 || qe.Quorum.Required != 17 {
		t.Fatalf("error %v does not carry the figures", err)
	}
}

func TestSecondConvocationNeedsNoQuorum(t *testing.T) {
	// CGCT L2121-17 al. 2: after a second convocation the council deliberates
	// whatever the number present.
	s := newSittingWith(t, loadProfile(t, "fr-commune"), seats(33), true)
	s.arrive(1, 5)
	s.addItem("1", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "1"})
	it, _ := s.st.Item("1")
	if it.Quorum == nil || !it.Quorum.Waived || it.Quorum.Counted != 5 {
		t.Fatalf("item quorum = %+v, want waived with 5 present", it.Quorum)
	}
}

func TestQuorumRecheckedAtVoteAfterDepartures(t *testing.T) {
	// CGCT L2121-17: the quorum must hold when the council decides, not only
	// when the item opens; members who leave (or withdraw for an interest)
	// reduce it.
	s := newSitting(t, "fr-commune", 33)
	s.arrive(1, 18)
	s.addItem("1", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "1"})
	s.do(council.RecordDeparture{Header: s.clerk(), Seat: 18, Reason: council.LeftSession})
	s.do(council.OpenVote{Header: s.chair(), ID: "1-a", Item: "1", Mode: council.ShowOfHands}) // 17 still there
	s.do(council.CloseVote{Header: s.chair(), Vote: "1-a", NonVoters: span(1, 17)})            // nobody's hand counted: the subject is the quorum
	s.do(council.RecordDeparture{Header: s.clerk(), Seat: 17, Reason: council.Withdrew})
	err := s.refused(council.OpenVote{Header: s.chair(), ID: "1-b", Item: "1", Mode: council.ShowOfHands}, council.ErrNoQuorum)
	if !strings.Contains(err.Error(), "16 present, 17 required of 33 in office") {
		t.Fatalf("refusal %q lacks the figures", err)
	}
}

func TestProxyCapPerHolder(t *testing.T) {
	cases := []struct {
		law       string
		profile   string
		accepted  int // proxies seat 1 may hold
		refusalIs string
	}{
		{"CGCT L2121-20: a member holds one proxy only", "fr-commune", 1,
			"seat 1 already holds a proxy (profile fr-commune allows 1)"},
		{"Loi 2020-290 art. 10: a member may hold two proxies, not three", "fr-2020-emergency", 2,
			"seat 1 already holds 2 proxies (profile fr-2020-emergency allows 2)"},
		{"CGCT L2121-20 applied to EPCI by L5211-1: one proxy", "fr-epci-visio", 1,
			"seat 1 already holds a proxy (profile fr-epci-visio allows 1)"},
	}
	for _, c := range cases {
		t.Run(c.law, func(t *testing.T) {
			s := newSitting(t, c.profile, 33)
			s.arrive(1, 3)
			for i := 0; i < c.accepted; i++ {
				s.do(council.GiveProxy{Header: s.clerk(), Giver: 10 + i, Holder: 1})
			}
			err := s.refused(council.GiveProxy{Header: s.clerk(), Giver: 20, Holder: 1}, council.ErrProxyCap)
			if err.Error() != c.refusalIs {
				t.Fatalf("refusal %q, want %q", err, c.refusalIs)
			}
			// Another present member may still take it.
			s.do(council.GiveProxy{Header: s.clerk(), Giver: 20, Holder: 2})
		})
	}
}

func TestProxyHolderMustBePresent(t *testing.T) {
	// CGCT L2121-20: the proxy is given to a colleague who votes in the
	// giver's name, which needs the colleague in the session.
	s := newSitting(t, "fr-commune", 33)
	s.arrive(1, 17)
	err := s.refused(council.GiveProxy{Header: s.clerk(), Giver: 20, Holder: 21}, council.ErrNotPresent)
	if !strings.Contains(err.Error(), "seat 21 must be present") {
		t.Fatalf("refusal %q", err)
	}
	// A holder who leaves can no longer use it: the giver is no longer represented.
	s.do(council.GiveProxy{Header: s.clerk(), Giver: 20, Holder: 5})
	if a := s.st.Attendance(20); a.Presence != council.PresenceRepresented || a.RepresentedBy != 5 {
		t.Fatalf("giver attendance = %+v, want represented by 5", a)
	}
	s.do(council.RecordDeparture{Header: s.clerk(), Seat: 5})
	if a := s.st.Attendance(20); a.Presence != council.PresenceAbsent {
		t.Fatalf("giver attendance after holder left = %+v, want absent", a)
	}
}

func TestGiverArrivalSuspendsOrRevokes(t *testing.T) {
	// CGCT L2121-20: a proxy stands in for a member unable to attend; once
	// there, the member votes in person. fr-commune suspends it; a profile may
	// revoke it instead.
	revoking, err := council.ParseProfile([]byte(strings.Replace(string(mustRead(t, "fr-commune")),
		"on_giver_arrival: suspend", "on_giver_arrival: revoke", 1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		p          *council.Profile
		afterLeave council.Presence
	}{
		{"suspend", loadProfile(t, "fr-commune"), council.PresenceRepresented},
		{"revoke", revoking, council.PresenceAbsent},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSittingWith(t, c.p, seats(33), false)
			s.arrive(1, 17)
			s.do(council.GiveProxy{Header: s.clerk(), Giver: 20, Holder: 3})
			s.arrive(20, 20)
			if a := s.st.Attendance(20); a.Presence != council.PresenceChamber {
				t.Fatalf("giver in the room: %+v", a)
			}
			if q := s.st.Quorum(); q.Chamber != 18 || q.Represented != 0 {
				t.Fatalf("quorum with giver present = %+v", q)
			}
			s.addItem("1", "")
			s.do(council.OpenItem{Header: s.chair(), ID: "1"})
			s.do(council.OpenVote{Header: s.chair(), ID: "v", Item: "1", Mode: council.RollCall})
			// The holder cannot vote for a giver who is in the room.
			s.refused(council.CastBallot{Header: s.member(3), Vote: "v", Seat: 20, Choice: council.For}, council.ErrNotEntitled)
			s.do(council.CastBallot{Header: s.member(20), Vote: "v", Seat: 20, Choice: council.Against})
			s.do(council.CloseVote{Header: s.chair(), Vote: "v", NonVoters: span(1, 17)})
			s.do(council.RecordDeparture{Header: s.clerk(), Seat: 20})
			if a := s.st.Attendance(20); a.Presence != c.afterLeave {
				t.Fatalf("giver after leaving again: %+v, want %s", a, c.afterLeave)
			}
		})
	}
}

// mustRead returns a shipped profile's YAML, to derive variants from it.
func mustRead(t *testing.T, id string) []byte {
	t.Helper()
	b, err := readProfile(id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// voteSitting opens an item with 20 members in the chamber of a 33-member
// council, ready for a vote.
func voteSitting(t *testing.T, profile string, mode council.VoteMode) *sitting {
	s := newSitting(t, profile, 33)
	s.arrive(1, 20)
	s.addItem("1", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "1"})
	s.do(council.OpenVote{Header: s.chair(), ID: "v", Item: "1", Mode: mode, Question: "Approve?"})
	return s
}

func TestMajorityOfVotesCast(t *testing.T) {
	// Seat 1 chairs. Seats are given choices in ranges.
	type tally struct{ forTo, againstTo, abstainTo, notVotingTo int }
	cases := []struct {
		law         string
		profile     string
		chair       council.Choice // seat 1's own ballot
		t           tally          // seats 2..forTo for, ..againstTo against, ..abstainTo abstain, ..notVotingTo not voting
		adopted     bool
		casting     bool
		wantFor     int
		wantAgainst int
		wantCast    int
	}{
		{"CGCT L2121-20: abstentions are not votes cast; 6 for, 5 against, 9 abstain is adopted",
			"fr-commune", council.Abstain, tally{7, 12, 20, 20}, true, false, 6, 5, 11},
		{"CGCT L2121-20: not voting is not a vote cast; 5 for, 4 against, 11 not voting is adopted",
			"fr-commune", council.NotVoting, tally{6, 10, 10, 20}, true, false, 5, 4, 9},
		{"CGCT L2121-20: a tie on a public vote goes the chair's way (chair for)",
			"fr-commune", council.For, tally{10, 20, 20, 20}, true, true, 10, 10, 20},
		{"CGCT L2121-20: a tie on a public vote goes the chair's way (chair against)",
			"fr-commune", council.Against, tally{11, 20, 20, 20}, false, true, 10, 10, 20},
		{"CGCT L2121-20: a chair who abstains has no casting vote; a tie is not a majority",
			"fr-commune", council.Abstain, tally{10, 19, 20, 20}, false, false, 9, 9, 18},
		{"Ordonnance 2020-391 art. 6: the chair's casting vote applies too",
			"fr-2020-emergency", council.For, tally{10, 20, 20, 20}, true, true, 10, 10, 20},
		{"CGCT L2121-20: more against than for is rejected",
			"fr-commune", council.For, tally{5, 20, 20, 20}, false, false, 5, 15, 20},
	}
	for _, c := range cases {
		t.Run(c.law, func(t *testing.T) {
			s := voteSitting(t, c.profile, council.RollCall)
			s.do(council.CastBallot{Header: s.chair(), Vote: "v", Seat: 1, Choice: c.chair})
			s.ballots("v", council.For, span(2, c.t.forTo)...)
			s.ballots("v", council.Against, span(c.t.forTo+1, c.t.againstTo)...)
			s.ballots("v", council.Abstain, span(c.t.againstTo+1, c.t.abstainTo)...)
			s.ballots("v", council.NotVoting, span(c.t.abstainTo+1, c.t.notVotingTo)...)
			s.do(council.CloseVote{Header: s.chair(), Vote: "v"})
			r := s.result("v")
			if r.Adopted != c.adopted || r.CastingVote != c.casting || r.For != c.wantFor || r.Against != c.wantAgainst || r.Cast != c.wantCast {
				t.Fatalf("result = %+v; want adopted %v casting %v for %d against %d cast %d",
					r, c.adopted, c.casting, c.wantFor, c.wantAgainst, c.wantCast)
			}
		})
	}
}

func TestSecretBallotTieHasNoCastingVote(t *testing.T) {
	// CGCT L2121-20: "sauf cas de scrutin secret"; a tied secret ballot is
	// not adopted (ministerial answer, JO AN 23 May 2006). L2121-21: a third
	// of members present may ask for it.
	s := newSitting(t, "fr-commune", 33)
	s.arrive(1, 21)
	s.addItem("1", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "1"})
	err := s.refused(council.RequestSecretBallot{Header: s.chair(), Item: "1", Requesters: 6}, council.ErrInvalid)
	if !strings.Contains(err.Error(), "needs 7 of the 21 members present") {
		t.Fatalf("refusal %q", err)
	}
	s.do(council.RequestSecretBallot{Header: s.chair(), Item: "1", Requesters: 7})
	s.refused(council.OpenVote{Header: s.chair(), ID: "v", Item: "1", Mode: council.RollCall}, council.ErrVoteMode)
	s.do(council.OpenVote{Header: s.chair(), ID: "v", Item: "1", Mode: council.Secret})
	s.refused(council.CastBallot{Header: s.member(3), Vote: "v", Seat: 3, Choice: council.For}, council.ErrVoteMode)
	s.refused(council.RecordTally{Header: s.clerk(), Vote: "v", Tally: council.Tally{For: 12, Against: 12}}, council.ErrInvalid) // 24 papers, 21 voters
	s.do(council.RecordTally{Header: s.clerk(), Vote: "v", Tally: council.Tally{For: 10, Against: 10, Blank: 1}})
	s.do(council.CloseVote{Header: s.chair(), Vote: "v"})
	if r := s.result("v"); r.Adopted || r.CastingVote || r.Blank != 1 || r.Cast != 20 {
		t.Fatalf("secret tie result = %+v, want rejected without casting vote", r)
	}
}

func TestSecretBallotWithRemoteMembers(t *testing.T) {
	// CGCT L5211-11-1: if a secret ballot is requested while the council sits
	// by video, the item is postponed to a meeting not held by video. With
	// everyone in the chamber the ballot is held.
	t.Run("remote member present: postponed", func(t *testing.T) {
		s := newSitting(t, "fr-epci-visio", 33)
		s.arrive(1, 15)
		s.connect(16, 18)
		s.addItem("1", "")
		s.do(council.OpenItem{Header: s.chair(), ID: "1"})
		events := s.do(council.RequestSecretBallot{Header: s.chair(), Item: "1", Requesters: 6})
		if len(events) != 2 {
			t.Fatalf("events = %v, want the request and the postponement", events)
		}
		it, _ := s.st.Item("1")
		if it.Status != council.StatusPostponed || !strings.Contains(it.PostponeReason, "seats 16, 17, 18") {
			t.Fatalf("item = %+v, want postponed naming the remote seats", it)
		}
		s.refused(council.OpenVote{Header: s.chair(), ID: "v", Item: "1", Mode: council.RollCall}, council.ErrState)
	})
	t.Run("everyone in the chamber: held", func(t *testing.T) {
		s := newSitting(t, "fr-epci-visio", 33)
		s.arrive(1, 18)
		s.addItem("1", "")
		s.do(council.OpenItem{Header: s.chair(), ID: "1"})
		s.do(council.RequestSecretBallot{Header: s.chair(), Item: "1", Requesters: 6})
		s.do(council.OpenVote{Header: s.chair(), ID: "v", Item: "1", Mode: council.Secret})
	})
}

func TestInPersonOnlyItemRefusedWithRemoteMembers(t *testing.T) {
	// CGCT L5211-11-1: the budget primitif cannot be adopted in a meeting held
	// in several places: the item is not even taken up while remote members take part.
	s := newSitting(t, "fr-epci-visio", 33)
	s.arrive(1, 15)
	s.connect(16, 17)
	s.addItem("B", "budget-primitif")
	err := s.refused(council.OpenItem{Header: s.chair(), ID: "B"}, council.ErrInPersonOnly)
	for _, want := range []string{`item "B" cannot be opened`, `"budget-primitif" items`, "seats 16, 17"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("refusal %q does not say %q", err, want)
		}
	}
	// Once the remote members have left (and the quorum holds in the room), the item opens.
	s.do(council.RecordDeparture{Header: s.clerk(), Seat: 16})
	s.do(council.RecordDeparture{Header: s.clerk(), Seat: 17})
	s.arrive(16, 17)
	s.do(council.OpenItem{Header: s.chair(), ID: "B"})
	s.do(council.OpenVote{Header: s.chair(), ID: "v", Item: "B", Mode: council.RollCall})
	// A member who connects remotely meanwhile cannot vote on it.
	s.connect(20, 20)
	s.refused(council.CastBallot{Header: s.member(20), Vote: "v", Seat: 20, Choice: council.For}, council.ErrInPersonOnly)
}

func TestVoteModesWithRemoteMembers(t *testing.T) {
	// CGCT L5211-11-1 and ordonnance 2020-391 art. 6: with remote members,
	// public votes by roll call or electronic ballot only.
	for _, profile := range []string{"fr-epci-visio", "fr-2020-emergency"} {
		t.Run(profile, func(t *testing.T) {
			s := newSitting(t, profile, 33)
			s.arrive(1, 16)
			s.connect(17, 17)
			s.addItem("1", "")
			s.do(council.OpenItem{Header: s.chair(), ID: "1"})
			err := s.refused(council.OpenVote{Header: s.chair(), ID: "v", Item: "1", Mode: council.ShowOfHands}, council.ErrVoteMode)
			if !strings.Contains(err.Error(), "roll-call, electronic") {
				t.Fatalf("refusal %q does not list the modes allowed", err)
			}
			s.do(council.OpenVote{Header: s.chair(), ID: "v", Item: "1", Mode: council.Electronic})
			// Electronic: each member votes from their own device, the clerk cannot vote for them.
			s.refused(council.CastBallot{Header: s.clerk(), Vote: "v", Seat: 17, Choice: council.For}, council.ErrNotEntitled)
			s.do(council.CastBallot{Header: s.member(17), Vote: "v", Seat: 17, Choice: council.For})
		})
	}
}

func TestCommuneAllowsNoRemoteParticipation(t *testing.T) {
	// CGCT L2121-7: the municipal council meets at the town hall; no article
	// lets it meet by video outside the 2020–2022 emergency.
	s := newSitting(t, "fr-commune", 33)
	err := s.refused(council.RecordArrival{Header: s.member(4), Seat: 4, Place: council.Remote}, council.ErrRemoteNotAllowed)
	if !strings.Contains(err.Error(), "profile fr-commune") {
		t.Fatalf("refusal %q", err)
	}
}

func TestRemoteCountsOnlyAfterVerification(t *testing.T) {
	s := newSitting(t, "fr-epci-visio", 33)
	s.arrive(1, 16)
	s.do(council.RecordArrival{Header: s.member(17), Seat: 17, Place: council.Remote})
	if q := s.st.Quorum(); q.Reached || q.Unverified != 1 {
		t.Fatalf("before verification: %+v", q)
	}
	if a := s.st.Attendance(17); a.Presence != council.PresenceUnverified {
		t.Fatalf("attendance before verification = %+v", a)
	}
	s.refused(council.RequestFloor{Header: s.member(17), Seat: 17}, council.ErrNotPresent)
	s.do(council.VerifyRemote{Header: s.clerk(), Seat: 17})
	if q := s.st.Quorum(); !q.Reached || q.Remote != 1 || q.Counted != 17 {
		t.Fatalf("after verification: %+v", q)
	}
	// A lost connection, reported by the caller after the grace period, is a departure.
	s.do(council.RecordDeparture{Header: s.clerk(), Seat: 17, Reason: council.ConnectionLost})
	if q := s.st.Quorum(); q.Reached {
		t.Fatalf("after connection lost: %+v", q)
	}
	a := s.st.Attendance(17)
	if len(a.Periods) != 1 || a.Periods[0].Reason != council.ConnectionLost || a.Periods[0].VerifiedAt.IsZero() {
		t.Fatalf("periods = %+v", a.Periods)
	}
}

func TestBallots(t *testing.T) {
	// Each holder casts for self and for each proxy separately (L2121-20).
	s := newSitting(t, "fr-2020-emergency", 33)
	s.arrive(1, 12)
	s.do(council.GiveProxy{Header: s.clerk(), Giver: 20, Holder: 3})
	s.do(council.GiveProxy{Header: s.clerk(), Giver: 21, Holder: 3})
	s.addItem("1", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "1"})
	s.do(council.OpenVote{Header: s.chair(), ID: "v", Item: "1", Mode: council.RollCall})
	s.do(council.CastBallot{Header: s.member(3), Vote: "v", Seat: 3, Choice: council.For})
	s.do(council.CastBallot{Header: s.member(3), Vote: "v", Seat: 20, Choice: council.Against})
	s.do(council.CastBallot{Header: s.clerk(), Vote: "v", Seat: 21, Choice: council.Abstain}) // the clerk records a roll-call answer
	err := s.refused(council.CastBallot{Header: s.member(3), Vote: "v", Seat: 20, Choice: council.For}, council.ErrAlreadyVoted)
	if !strings.Contains(err.Error(), "seat 20 has already voted") {
		t.Fatalf("refusal %q", err)
	}
	s.refused(council.CastBallot{Header: s.member(4), Vote: "v", Seat: 5, Choice: council.For}, council.ErrNotEntitled)
	s.refused(council.CastBallot{Header: s.member(4), Vote: "v", Seat: 22, Choice: council.For}, council.ErrNotPresent)
	v, _ := s.st.Vote("v")
	got := map[int]int{}
	for _, b := range v.Ballots {
		got[b.Seat] = b.CastBy
	}
	if got[3] != 3 || got[20] != 3 || got[21] != 3 || len(got) != 3 {
		t.Fatalf("ballots cast by = %v", got)
	}
	pending := s.st.PendingVoters()
	if len(pending) != 11 { // seats 1,2,4..12 present and not yet voted
		t.Fatalf("pending voters = %v", pending)
	}
}

func TestItemScopedProxy(t *testing.T) {
	// A proxy may be limited to one item: it counts and votes there only.
	s := newSitting(t, "fr-2020-emergency", 33)
	s.arrive(1, 10)
	s.addItem("1", "")
	s.addItem("2", "")
	s.do(council.GiveProxy{Header: s.clerk(), Giver: 20, Holder: 2, Item: "2"})
	s.refused(council.OpenItem{Header: s.chair(), ID: "1"}, council.ErrNoQuorum) // 10 < 11: the proxy is for item 2
	s.do(council.OpenItem{Header: s.chair(), ID: "2"})                           // 10 + 1 represented
	s.do(council.OpenVote{Header: s.chair(), ID: "v", Item: "2", Mode: council.RollCall})
	s.do(council.CastBallot{Header: s.member(2), Vote: "v", Seat: 20, Choice: council.For})
}

func TestItemFlaggedInPersonOnly(t *testing.T) {
	// An item of any kind may be flagged in person only by the chair (e.g.
	// an appointment the profile does not list).
	s := newSitting(t, "fr-epci-visio", 33)
	s.arrive(1, 16)
	s.connect(17, 17)
	s.do(council.AddItem{Header: s.chair(), ID: "9", Title: "Désignation", InPersonOnly: true})
	err := s.refused(council.OpenItem{Header: s.chair(), ID: "9"}, council.ErrInPersonOnly)
	if !strings.Contains(err.Error(), "flagged in person only") || !strings.Contains(err.Error(), "seat 17") {
		t.Fatalf("refusal %q", err)
	}
}

func TestView(t *testing.T) {
	s := newSitting(t, "fr-epci-visio", 5)
	s.arrive(1, 2)
	s.connect(3, 3)
	s.do(council.RecordArrival{Header: s.member(4), Seat: 4, Place: council.Remote})
	s.do(council.GiveProxy{Header: s.clerk(), Giver: 5, Holder: 1})
	s.do(council.RequestFloor{Header: s.member(2), Seat: 2})
	v := s.st.View(s.now)
	want := []council.Presence{council.PresenceChamber, council.PresenceChamber, council.PresenceRemote, council.PresenceUnverified, council.PresenceRepresented}
	for i, sv := range v.Seats {
		if sv.Presence != want[i] {
			t.Errorf("seat %d presence %s, want %s", sv.Seat, sv.Presence, want[i])
		}
	}
	if v.Seats[4].RepresentedBy != 1 || len(v.Seats[0].Holds) != 1 {
		t.Errorf("proxy not shown: %+v %+v", v.Seats[0], v.Seats[4])
	}
	if !v.Quorum.Reached || v.Quorum.Counted != 3 || v.Quorum.Required != 3 || len(v.Floor.Queue) != 1 || len(v.Remote) != 1 {
		t.Errorf("view = %+v", v)
	}
}

// Issue's rule on departures on time: a remote member whose connection is lost left when it was
// lost; the grace after it (for a reconnection) only delays the decision, so the attendance and
// the minutes end the member's presence at the loss. The loss cannot be dated outside the
// member's presence, nor given to a voluntary departure.
func TestALostConnectionIsADepartureAtTheLoss(t *testing.T) {
	s := newSitting(t, "fr-epci-visio", 5)
	s.arrive(1, 3)
	s.connect(4, 4)
	from := s.st.Attendance(4).Periods[0].From
	lost := s.now.Add(30 * time.Second)
	s.tick(council.Actor{}) // the grace runs
	s.tick(council.Actor{})
	ev := s.do(council.RecordDeparture{Header: s.member(4), Seat: 4, Reason: council.ConnectionLost, LostAt: lost})
	if got := ev[0].(council.MemberDeparted); !got.LostAt.Equal(lost) {
		t.Fatalf("event %+v, want the loss at %s", got, lost)
	}
	p := s.st.Attendance(4).Periods[0]
	if !p.To.Equal(lost) || p.Reason != council.ConnectionLost {
		t.Fatalf("seat 4's presence %+v, want it to end at the loss %s", p, lost)
	}

	s.connect(5, 5)
	err := s.refused(council.RecordDeparture{Header: s.member(5), Seat: 5, Reason: council.ConnectionLost, LostAt: from}, council.ErrInvalid)
	if !strings.Contains(err.Error(), "outside its attendance") {
		t.Errorf("a loss before the member arrived: %v", err)
	}
	h := s.member(5)
	s.refused(council.RecordDeparture{Header: h, Seat: 5, Reason: council.ConnectionLost, LostAt: h.At.Add(time.Minute)}, council.ErrInvalid)
	s.refused(council.RecordDeparture{Header: s.member(5), Seat: 5, Reason: council.LeftSession, LostAt: s.now}, council.ErrInvalid)
}
