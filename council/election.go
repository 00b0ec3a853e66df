package council

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Elections and nominations (CGCT L2121-21): candidates declared in the sitting, a secret
// ballot unless the law allows the council to waive it unanimously, rounds at absolute then
// relative majority, and the eldest on a tie. Ordinary motions may be put to a public vote by
// name when a quarter of the members present ask (L2121-21 al. 1).

// Election ballots: a paper naming a candidate, a blank paper, or no part taken.
const (
	ForCandidate Choice = "candidate"
	BlankPaper   Choice = "blank"
)

// CandidateVotes is one candidate's votes in a round.
type CandidateVotes struct {
	Seat  int `json:"seat"`
	Votes int `json:"votes"`
}

// ElectionResult is a round's proclaimed outcome.
type ElectionResult struct {
	Round int `json:"round"`
	// Voters is the number of voters (papers in the urn, or named ballots); Blank and Spoilt
	// papers are counted apart, and Cast, the votes cast, is what remains.
	Voters int `json:"voters"`
	Blank  int `json:"blank"`
	Spoilt int `json:"spoilt"`
	Cast   int `json:"cast"`
	// Required is the absolute majority of the votes cast; 0 in the round at relative majority.
	Required int `json:"required,omitempty"`
	// Votes lists every candidate's votes, most first, then in roster order.
	Votes []CandidateVotes `json:"votes"`
	// Elected is the seat elected, 0 when the round named nobody.
	Elected int `json:"elected,omitempty"`
	// Tied lists the candidates tied first in the last round; ByAge says the eldest of them
	// was elected, and when a birth date is missing Elected stays 0.
	Tied  []int `json:"tied,omitempty"`
	ByAge bool  `json:"byAge,omitempty"`
	Chair int   `json:"chair"`
}

// PublicVoteRequest is a request for a public vote by name, with the seats who asked.
type PublicVoteRequest struct {
	Requesters []int     `json:"requesters"`
	Present    int       `json:"present"`
	At         time.Time `json:"at"`
}

// UnanimousDecision records the council's unanimous decision, with the members present.
type UnanimousDecision struct {
	Present int       `json:"present"`
	At      time.Time `json:"at"`
}

// DeclareCandidate records a member standing in an election item's next round.
type DeclareCandidate struct {
	Header
	Item string `json:"item"`
	Seat int    `json:"seat"`
}

// WithdrawCandidate records a candidate standing down before a round.
type WithdrawCandidate struct {
	Header
	Item string `json:"item"`
	Seat int    `json:"seat"`
}

// DecidePublicVote records the council's unanimous decision not to vote by secret ballot on a
// nomination (CGCT L2121-21 al. 4), where no text requires the secret ballot.
type DecidePublicVote struct {
	Header
	Item string `json:"item"`
}

// RequestPublicVote records the members who asked for a public vote on the open item
// (CGCT L2121-21 al. 1: a quarter of the members present).
type RequestPublicVote struct {
	Header
	Item       string `json:"item"`
	Requesters []int  `json:"requesters"`
}

type CandidateDeclared struct {
	Header
	Item string `json:"item"`
	Seat int    `json:"seat"`
}

type CandidateWithdrawn struct {
	Header
	Item string `json:"item"`
	Seat int    `json:"seat"`
}

type PublicVoteDecided struct {
	Header
	Item    string `json:"item"`
	Present int    `json:"present"`
}

type PublicVoteRequested struct {
	Header
	Item       string `json:"item"`
	Requesters []int  `json:"requesters"`
	Present    int    `json:"present"`
}

func (CandidateDeclared) Type() string   { return "candidate.declared" }
func (CandidateWithdrawn) Type() string  { return "candidate.withdrawn" }
func (PublicVoteDecided) Type() string   { return "public-vote.decided" }
func (PublicVoteRequested) Type() string { return "public-vote.requested" }

// election reports whether the item is decided by an election.
func (s *State) election(it *Item) bool { return s.kindOf(it).Vote == VoteElection }

// candidacyOpen returns the election item if candidates may be declared or withdrawn now: the
// item under discussion, between rounds, nobody elected yet, the seat in office.
func (s *State) candidacyOpen(item string, seat int) (*Item, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	it, err := s.itemUnderDiscussion(item)
	if err != nil {
		return nil, err
	}
	if !s.election(it) {
		return nil, refuseEnFr(ErrInvalid, "item %q (%s) is not an election: it has no candidates",
			"le point %q (%s) n'est pas une élection : il n'a pas de candidats", it.ID, it.Kind)
	}
	if it.Elected != 0 {
		return nil, refuseEnFr(ErrState, "item %q: seat %d is already elected",
			"point %q : le siège %d est déjà élu", it.ID, it.Elected)
	}
	if v := s.openVote(); v != nil {
		return nil, refuseEnFr(ErrState, "round %q is open: candidates are declared between rounds",
			"le tour %q est ouvert : les candidatures se déclarent entre les tours", v.ID)
	}
	if _, err := s.inOffice(seat); err != nil {
		return nil, err
	}
	return it, nil
}

func (c DeclareCandidate) decide(s *State) ([]Event, error) {
	it, err := s.candidacyOpen(c.Item, c.Seat)
	if err != nil {
		return nil, err
	}
	if slices.Contains(it.Candidates, c.Seat) {
		return nil, refuseEnFr(ErrState, "seat %d is already a candidate on item %q",
			"le siège %d est déjà candidat au point %q", c.Seat, it.ID)
	}
	return []Event{CandidateDeclared{Header: c.Header, Item: it.ID, Seat: c.Seat}}, nil
}

func (c WithdrawCandidate) decide(s *State) ([]Event, error) {
	it, err := s.candidacyOpen(c.Item, c.Seat)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(it.Candidates, c.Seat) {
		return nil, refuseEnFr(ErrState, "seat %d is not a candidate on item %q",
			"le siège %d n'est pas candidat au point %q", c.Seat, it.ID)
	}
	return []Event{CandidateWithdrawn{Header: c.Header, Item: it.ID, Seat: c.Seat}}, nil
}

// beforeVoting returns the open item if no vote was taken on it yet.
func (s *State) beforeVoting(item string) (*Item, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	it, err := s.itemUnderDiscussion(item)
	if err != nil {
		return nil, err
	}
	if len(it.Votes) > 0 {
		return nil, refuseEnFr(ErrState, "item %q was already put to the vote: the way of voting is decided before",
			"le point %q a déjà été mis aux voix : le mode de scrutin se décide avant", it.ID)
	}
	return it, nil
}

func (c DecidePublicVote) decide(s *State) ([]Event, error) {
	it, err := s.beforeVoting(c.Item)
	if err != nil {
		return nil, err
	}
	switch k := s.kindOf(it); {
	case k.Secret == SecretRequired:
		return nil, refuseEnFr(ErrVoteMode, "item %q (%s): profile %s requires a secret ballot, which no decision of the council can waive",
			"point %q (%s) : le profil %s impose le scrutin secret, auquel le conseil ne peut renoncer", it.ID, it.Kind, s.profile.ID)
	case k.Secret != SecretByDefault:
		return nil, refuseEnFr(ErrVoteMode, "item %q (%s) is voted publicly already: only a nomination's secret ballot is waived unanimously",
			"le point %q (%s) est déjà voté au scrutin public : seul le scrutin secret d'une nomination se lève à l'unanimité", it.ID, it.Kind)
	case it.PublicDecided != nil:
		return nil, refuseEnFr(ErrState, "the council already decided to vote publicly on item %q",
			"le conseil a déjà décidé de voter au scrutin public sur le point %q", it.ID)
	case it.SecretBallot != nil:
		return nil, refuseEnFr(ErrState, "members asked for a secret ballot on item %q: the decision is not unanimous",
			"des membres ont demandé le scrutin secret sur le point %q : la décision n'est pas unanime", it.ID)
	}
	return []Event{PublicVoteDecided{Header: c.Header, Item: it.ID, Present: s.quorumFor(it.ID).presentCount()}}, nil
}

func (c RequestPublicVote) decide(s *State) ([]Event, error) {
	it, err := s.beforeVoting(c.Item)
	if err != nil {
		return nil, err
	}
	if k := s.kindOf(it); k.Vote != VoteMotion || k.Secret != SecretOnRequest {
		return nil, refuseEnFr(ErrVoteMode, "item %q (%s) is voted by secret ballot (CGCT L2121-21): a public vote cannot be requested",
			"le point %q (%s) se vote au scrutin secret (CGCT L2121-21) : le scrutin public ne peut être demandé", it.ID, it.Kind)
	}
	if it.PublicVote != nil {
		return nil, refuseEnFr(ErrState, "a public vote was already requested on item %q",
			"le scrutin public a déjà été demandé sur le point %q", it.ID)
	}
	if it.SecretBallot != nil {
		return nil, refuseEnFr(ErrVoteMode, "a secret ballot was requested on item %q and prevails over a public vote",
			"le scrutin secret a été demandé sur le point %q et l'emporte sur le scrutin public", it.ID)
	}
	seen := map[int]bool{}
	for _, seat := range c.Requesters {
		if seen[seat] {
			return nil, refuseEnFr(ErrInvalid, "seat %d is named twice among those asking", "le siège %d est nommé deux fois parmi les demandeurs", seat)
		}
		seen[seat] = true
		if _, err := s.inOffice(seat); err != nil {
			return nil, err
		}
		if !s.present(seat) {
			return nil, refuseEnFr(ErrNotPresent, "seat %d is not present: only members present may ask for a public vote",
				"le siège %d n'est pas présent : seuls les membres présents peuvent demander le scrutin public", seat)
		}
	}
	present := s.quorumFor(it.ID).presentCount()
	share := s.profile.Votes.PublicRequest
	if need := Threshold(present, share, AtLeast); len(c.Requesters) < need {
		return nil, refuseEnFr(ErrInvalid, "a public vote needs %d of the %d members present to ask (%s); %d asked",
			"le scrutin public doit être demandé par %d des %d membres présents (%s) ; %d l'ont demandé", need, present, share, len(c.Requesters))
	}
	return []Event{PublicVoteRequested{Header: c.Header, Item: it.ID, Requesters: slices.Clone(c.Requesters), Present: present}}, nil
}

func (e CandidateDeclared) apply(s *State) error {
	it, err := s.itemUnderDiscussion(e.Item)
	if err != nil {
		return err
	}
	if _, err := s.inOffice(e.Seat); err != nil {
		return err
	}
	if slices.Contains(it.Candidates, e.Seat) {
		return fmt.Errorf("seat %d is already a candidate", e.Seat)
	}
	it.Candidates = append(it.Candidates, e.Seat)
	return nil
}

func (e CandidateWithdrawn) apply(s *State) error {
	it, err := s.item(e.Item)
	if err != nil {
		return err
	}
	i := slices.Index(it.Candidates, e.Seat)
	if i < 0 {
		return fmt.Errorf("seat %d is not a candidate", e.Seat)
	}
	it.Candidates = slices.Delete(it.Candidates, i, i+1)
	return nil
}

func (e PublicVoteDecided) apply(s *State) error {
	it, err := s.itemUnderDiscussion(e.Item)
	if err != nil {
		return err
	}
	it.PublicDecided = &UnanimousDecision{Present: e.Present, At: e.At}
	return nil
}

func (e PublicVoteRequested) apply(s *State) error {
	it, err := s.itemUnderDiscussion(e.Item)
	if err != nil {
		return err
	}
	it.PublicVote = &PublicVoteRequest{Requesters: slices.Clone(e.Requesters), Present: e.Present, At: e.At}
	return nil
}

// secretRequired says whether the item must be voted by secret ballot, and why (in English
// and French).
func (s *State) secretRequired(it *Item) (secret bool, en, fr string) {
	k := s.kindOf(it)
	switch {
	case it.SecretBallot != nil && it.SecretBallot.Outcome == SecretHeld:
		return true, "it was requested", "il a été demandé"
	case k.Secret == SecretRequired:
		return true, fmt.Sprintf("profile %s requires it for %q items", s.profile.ID, k.Name),
			fmt.Sprintf("le profil %s l'impose aux points %q", s.profile.ID, k.Name)
	case k.Secret == SecretByDefault && it.PublicDecided == nil:
		return true, fmt.Sprintf("profile %s requires it for %q items unless the council unanimously decides otherwise", s.profile.ID, k.Name),
			fmt.Sprintf("le profil %s l'impose aux points %q sauf décision unanime contraire du conseil", s.profile.ID, k.Name)
	}
	return false, "", ""
}

// nextRound checks that an election item may take a new round and returns its number.
func (s *State) nextRound(it *Item) (int, error) {
	if it.Elected != 0 {
		return 0, refuseEnFr(ErrState, "item %q: seat %d is already elected", "point %q : le siège %d est déjà élu", it.ID, it.Elected)
	}
	round := len(it.Votes) + 1
	if last := s.profile.Elections.AbsoluteRounds + 1; round > last {
		return 0, refuseEnFr(ErrState, "item %q: round %d was the last (profile %s)", "point %q : le tour %d était le dernier (profil %s)",
			it.ID, last, s.profile.ID)
	}
	if len(it.Candidates) == 0 {
		return 0, refuseEnFr(ErrState, "item %q: no candidate is declared", "point %q : aucun candidat n'est déclaré", it.ID)
	}
	return round, nil
}

// electionBallotValid refuses an election ballot that names no candidate standing.
func electionBallotValid(v *Vote, choice Choice, candidate int) error {
	switch choice {
	case ForCandidate:
		if !slices.Contains(v.Candidates, candidate) {
			return refuseEnFr(ErrInvalid, "seat %d is not a candidate in round %q (candidates: %s)",
				"le siège %d n'est pas candidat au tour %q (candidats : %s)", candidate, v.ID, seatNumbers(v.Candidates))
		}
	case BlankPaper, NotVoting:
		if candidate != 0 {
			return refuseEnFr(ErrInvalid, "a %s ballot names no candidate", "un bulletin %s ne nomme pas de candidat", choice)
		}
	default:
		return refuseEnFr(ErrInvalid, "unknown choice %q in an election (candidate, blank, not-voting)",
			"choix %q inconnu dans une élection (candidate, blank, not-voting)", choice)
	}
	return nil
}

// seatNumbers lists seat numbers for a message in any language: "4, 9".
func seatNumbers(seats []int) string {
	parts := make([]string, len(seats))
	for i, n := range seats {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ", ")
}

// electionTallyValid checks a round's tellers' count: every paper counted once, only
// candidates standing, no more voters than members present or represented.
func (s *State) electionTallyValid(v *Vote, t Tally) error {
	if t.For != 0 || t.Against != 0 {
		return refuseEnFr(ErrInvalid, "round %q is an election: count each candidate's votes, not for and against",
			"le tour %q est une élection : comptez les voix de chaque candidat, non des pour et des contre", v.ID)
	}
	sum := t.Blank + t.Spoilt
	seen := map[int]bool{}
	for _, c := range t.Candidates {
		if !slices.Contains(v.Candidates, c.Seat) || seen[c.Seat] {
			return refuseEnFr(ErrInvalid, "seat %d is not a candidate in round %q, or is counted twice",
				"le siège %d n'est pas candidat au tour %q, ou est compté deux fois", c.Seat, v.ID)
		}
		if c.Votes < 0 {
			return refuseEnFr(ErrInvalid, "a tally cannot hold negative counts", "un dépouillement ne peut compter de nombre négatif")
		}
		seen[c.Seat] = true
		sum += c.Votes
	}
	if sum != t.Voters {
		return refuseEnFr(ErrInvalid, "the papers counted (%d: candidates, blank and spoilt) differ from the %d voters",
			"les bulletins comptés (%d : candidats, blancs et nuls) diffèrent des %d votants", sum, t.Voters)
	}
	if voters := s.quorumFor(v.Item).voters(); t.Voters > voters {
		return refuseEnFr(ErrInvalid, "the tally counts %d voters but only %d members are present or represented",
			"le dépouillement compte %d votants mais seuls %d membres sont présents ou représentés", t.Voters, voters)
	}
	return nil
}

// electionResult counts a round and applies the profile's rule: an absolute majority of the
// votes cast in the first rounds, then a relative majority with the eldest on a tie
// (CGCT L2121-21 al. 3).
func (s *State) electionResult(v *Vote) ElectionResult {
	r := ElectionResult{Round: v.Round, Chair: s.session.Chair}
	votes := map[int]int{}
	if v.Mode == Secret {
		if t := v.Tally; t != nil {
			r.Voters, r.Blank, r.Spoilt = t.Voters, t.Blank, t.Spoilt
			for _, c := range t.Candidates {
				votes[c.Seat] += c.Votes
			}
		}
	} else {
		for _, b := range v.Ballots {
			switch b.Choice {
			case ForCandidate:
				votes[b.Candidate]++
				r.Voters++
			case BlankPaper:
				r.Blank++
				r.Voters++
			}
		}
	}
	for _, seat := range v.Candidates {
		r.Votes = append(r.Votes, CandidateVotes{Seat: seat, Votes: votes[seat]})
		r.Cast += votes[seat]
	}
	order := func(seat int) int {
		return slices.IndexFunc(s.roster.Seats, func(st Seat) bool { return st.Number == seat })
	}
	slices.SortStableFunc(r.Votes, func(a, b CandidateVotes) int {
		return cmp.Or(b.Votes-a.Votes, order(a.Seat)-order(b.Seat))
	})
	if len(r.Votes) == 0 || r.Votes[0].Votes == 0 {
		return r
	}
	top := r.Votes[0].Votes
	if v.Round <= s.profile.Elections.AbsoluteRounds {
		r.Required = Threshold(r.Cast, Fraction{1, 2}, MoreThan)
		if top >= r.Required {
			r.Elected = r.Votes[0].Seat
		}
		return r
	}
	for _, c := range r.Votes {
		if c.Votes == top {
			r.Tied = append(r.Tied, c.Seat)
		}
	}
	if len(r.Tied) == 1 {
		r.Elected, r.Tied = r.Tied[0], nil
		return r
	}
	r.Elected, r.ByAge = s.eldest(r.Tied), true
	if r.Elected == 0 {
		r.ByAge = false
	}
	return r
}

// eldest is the seat born first among seats, 0 when one's birth date is unknown or two share
// the earliest date.
func (s *State) eldest(seats []int) int {
	best, bestBorn, shared := 0, "", false
	for _, n := range seats {
		st, _ := s.roster.Seat(n)
		if st.Born == "" {
			return 0
		}
		switch {
		case best == 0 || st.Born < bestBorn:
			best, bestBorn, shared = n, st.Born, false
		case st.Born == bestBorn:
			shared = true
		}
	}
	if shared {
		return 0
	}
	return best
}

// sameCount reports whether a recorded election result counts what the round holds.
func sameCount(a, b ElectionResult) bool {
	if a.Voters != b.Voters || a.Blank != b.Blank || a.Spoilt != b.Spoilt || a.Cast != b.Cast || len(a.Votes) != len(b.Votes) {
		return false
	}
	for _, c := range a.Votes {
		if !slices.Contains(b.Votes, c) {
			return false
		}
	}
	return true
}
