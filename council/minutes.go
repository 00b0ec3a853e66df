package council

import (
	"slices"
	"time"
)

// Minutes is a draft procès-verbal built from the state: who attended and
// how, the quorum at each item, each vote with the names per choice, and
// the times. The clerk edits and signs the final text; this is the record
// it starts from.
type Minutes struct {
	Body         Body             `json:"body"`
	Title        string           `json:"title"`
	Location     string           `json:"location,omitempty"`
	Profile      string           `json:"profile"`
	OpenedAt     time.Time        `json:"openedAt,omitzero"`
	ClosedAt     time.Time        `json:"closedAt,omitzero"`
	Chair        *MemberRef       `json:"chair,omitempty"`
	Secretary    *MemberRef       `json:"secretary,omitempty"`
	ChairChanges []ChairTurn      `json:"chairChanges,omitempty"`
	InOffice     int              `json:"inOffice"`
	Second       bool             `json:"secondConvocation,omitempty"`
	Chamber      []Attendee       `json:"chamber"`
	Remote       []Attendee       `json:"remote"`
	Represented  []Representation `json:"represented"`
	Absent       []MemberRef      `json:"absent"`
	Items        []ItemMinutes    `json:"items"`
	Speaking     []SpeakingRecord `json:"speaking,omitempty"`
	// Bleeps are the passages cut from the public broadcast at the chair's request.
	Bleeps []Bleep `json:"bleeps,omitempty"`
	// Suspensions and ClosedDoors are the sitting's interruptions and its votes on a
	// closed-door sitting (CGCT L2121-18); ClosedFor, ClosingQuorum and SecondConvocationFrom
	// say that it closed for lack of a quorum and when it may meet again (L2121-17).
	Suspensions           []Suspension     `json:"suspensions,omitempty"`
	ClosedDoors           []ClosedDoorVote `json:"closedDoors,omitempty"`
	ClosedFor             ClosingReason    `json:"closedFor,omitempty"`
	ClosingQuorum         *Quorum          `json:"closingQuorum,omitempty"`
	SecondConvocationFrom time.Time        `json:"secondConvocationFrom,omitzero"`
	// Seal anchors the minutes to the journal they were drawn from; the caller, who read
	// the journal, sets it.
	Seal *JournalSeal `json:"seal,omitempty"`
}

// JournalSeal is the last entry of a sitting's journal as the minutes print it: whoever holds
// the public key can check that the journal they are given is the one these minutes
// describe, and that nobody without the key rewrote it.
type JournalSeal struct {
	Journal   string `json:"journal"`
	Entries   uint64 `json:"entries"` // the last entry's seq
	Hash      string `json:"hash"`    // its SHA-256, hex
	KeyID     string `json:"keyId,omitempty"`
	Signature string `json:"signature,omitempty"` // Ed25519 over the hash, base64url; empty when unsigned
	PublicKey string `json:"publicKey,omitempty"` // base64url; empty when the reader did not have it
}

// MemberRef names a member as the minutes do.
type MemberRef struct {
	Seat  int    `json:"seat"`
	Name  string `json:"name"`
	Group string `json:"group,omitempty"`
}

type ChairTurn struct {
	Member MemberRef `json:"member"`
	At     time.Time `json:"at"`
}

// Attendee is a member with the periods spent at one place.
type Attendee struct {
	MemberRef
	Periods []Period `json:"periods"`
}

type Representation struct {
	Giver  MemberRef `json:"giver"`
	Holder MemberRef `json:"holder"`
	Item   string    `json:"item,omitempty"`
	From   time.Time `json:"from"`
	Until  time.Time `json:"until,omitzero"`
	Ended  ProxyEnd  `json:"ended,omitempty"`
}

type ItemMinutes struct {
	ID           string     `json:"id"`
	Title        string     `json:"title"`
	Kind         string     `json:"kind,omitempty"`
	InPersonOnly bool       `json:"inPersonOnly,omitempty"`
	Status       ItemStatus `json:"status"`
	OpenedAt     time.Time  `json:"openedAt,omitzero"`
	ClosedAt     time.Time  `json:"closedAt,omitzero"`
	Quorum       *Quorum    `json:"quorum,omitempty"`
	// QuorumIncidents are the times the quorum was lost or regained during the item.
	QuorumIncidents []QuorumIncident `json:"quorumIncidents,omitempty"`
	PostponeReason  string           `json:"postponeReason,omitempty"`
	SecretBallot    *SecretRequest   `json:"secretBallot,omitempty"`
	// RemoteAtSecretRequest names the remote members whose presence
	// postponed a secret ballot.
	RemoteAtSecretRequest []MemberRef `json:"remoteAtSecretRequest,omitempty"`
	// PublicVote names the members who asked for a public vote by name (CGCT L2121-21 al. 1);
	// PublicDecided is the council's unanimous decision not to vote by secret ballot (al. 4).
	PublicVote    *PublicVoteMinutes `json:"publicVote,omitempty"`
	PublicDecided *UnanimousDecision `json:"publicDecided,omitempty"`
	// Elected is the member an election item named.
	Elected *MemberRef    `json:"elected,omitempty"`
	Votes   []VoteMinutes `json:"votes,omitempty"`
}

// PublicVoteMinutes is a request for a public vote with the names of those who asked.
type PublicVoteMinutes struct {
	Requesters []MemberRef `json:"requesters"`
	Present    int         `json:"present"`
	At         time.Time   `json:"at"`
}

type VoteMinutes struct {
	ID        string    `json:"id"`
	Question  string    `json:"question,omitempty"`
	Mode      VoteMode  `json:"mode"`
	OpenedAt  time.Time `json:"openedAt"`
	ClosedAt  time.Time `json:"closedAt,omitzero"`
	Quorum    Quorum    `json:"quorum"`
	For       []Voter   `json:"for,omitempty"`
	Against   []Voter   `json:"against,omitempty"`
	Abstain   []Voter   `json:"abstain,omitempty"`
	NotVoting []Voter   `json:"notVoting,omitempty"`
	Tally     *Tally    `json:"tally,omitempty"`
	Result    *Result   `json:"result,omitempty"`
	// Round is an election round's number (0 for a motion), with the candidates standing in
	// it, the papers of a public round by name (for each candidate, and blank), and its count
	// once closed.
	Round         int               `json:"round,omitempty"`
	Candidates    []MemberRef       `json:"candidates,omitempty"`
	ForCandidates []CandidateVoters `json:"forCandidates,omitempty"`
	Blank         []Voter           `json:"blank,omitempty"`
	Election      *RoundMinutes     `json:"election,omitempty"`
	// Corrections are the ballots the clerk corrected while the vote was open, both values.
	Corrections []CorrectionMinutes `json:"corrections,omitempty"`
	// NonVoters are the members present or represented without a ballot when the vote closed.
	NonVoters []MemberRef `json:"nonVoters,omitempty"`
	// Recorded are, in an electronic vote, the ballots the chair or the clerk recorded for
	// members in the chamber without a device, by who recorded them.
	Recorded []RecordedBallots `json:"recorded,omitempty"`
}

// RecordedBallots are the ballots one person recorded for others in an electronic vote;
// Member names the recorder when they hold a seat (the chair).
type RecordedBallots struct {
	By     Actor      `json:"by"`
	Member *MemberRef `json:"member,omitempty"`
	Voters []Voter    `json:"voters"`
}

// CandidateVoters are the members who named a candidate in a public round.
type CandidateVoters struct {
	Candidate MemberRef `json:"candidate"`
	Voters    []Voter   `json:"voters"`
}

// RoundMinutes is an election round's count as proclaimed (ElectionResult), with names.
type RoundMinutes struct {
	Voters   int              `json:"voters"`
	Blank    int              `json:"blank"`
	Spoilt   int              `json:"spoilt"`
	Cast     int              `json:"cast"`
	Required int              `json:"required,omitempty"` // 0 at relative majority
	Votes    []CandidateCount `json:"votes"`
	Elected  *MemberRef       `json:"elected,omitempty"`
	Tied     []MemberRef      `json:"tied,omitempty"`
	ByAge    bool             `json:"byAge,omitempty"`
}

// CandidateCount is a candidate's votes in a round.
type CandidateCount struct {
	MemberRef
	Votes int `json:"votes"`
}

// CorrectionMinutes is a corrected ballot: as keyed, as corrected, when, by whom and why.
type CorrectionMinutes struct {
	From   BallotMinutes `json:"from"`
	To     BallotMinutes `json:"to"`
	Reason string        `json:"reason"`
	At     time.Time     `json:"at"`
	By     Actor         `json:"by"`
}

// BallotMinutes is a ballot named: the member, the choice, the candidate of an election paper.
type BallotMinutes struct {
	Member    MemberRef  `json:"member"`
	Choice    Choice     `json:"choice"`
	Candidate *MemberRef `json:"candidate,omitempty"`
}

// Voter is a named ballot; By is set when a proxy holder cast it.
type Voter struct {
	MemberRef
	By *MemberRef `json:"by,omitempty"`
}

type SpeakingRecord struct {
	Member   MemberRef     `json:"member"`
	Speeches int           `json:"speeches"`
	Total    time.Duration `json:"total"`
}

// DraftMinutes builds the minutes from the state. Times are shown in loc
// (the body's time zone; nil keeps them as recorded).
func DraftMinutes(s *State, loc *time.Location) *Minutes {
	in := func(t time.Time) time.Time {
		if t.IsZero() || loc == nil {
			return t
		}
		return t.In(loc)
	}
	ref := func(seat int) MemberRef {
		st, _ := s.roster.Seat(seat)
		return MemberRef{Seat: seat, Name: st.Name, Group: st.Group}
	}
	sess := s.session
	periods := func(ps []Period) []Period {
		out := make([]Period, len(ps))
		for i, p := range ps {
			if p.To.IsZero() {
				p.To = sess.ClosedAt // still there when the session closed
			}
			p.From, p.To, p.VerifiedAt = in(p.From), in(p.To), in(p.VerifiedAt)
			out[i] = p
		}
		return out
	}
	m := &Minutes{
		Body: sess.Body, Title: sess.Title, Location: sess.Location, Profile: s.profile.ID,
		OpenedAt: in(sess.OpenedAt), ClosedAt: in(sess.ClosedAt),
		InOffice: s.roster.InOffice(), Second: sess.SecondConvocation,
	}
	if len(sess.Chairs) > 0 {
		c := ref(sess.Chairs[0].Seat)
		m.Chair = &c
		for _, ch := range sess.Chairs[1:] {
			m.ChairChanges = append(m.ChairChanges, ChairTurn{Member: ref(ch.Seat), At: in(ch.At)})
		}
	}
	if sess.Secretary != 0 {
		c := ref(sess.Secretary)
		m.Secretary = &c
	}

	gave := map[int]bool{}
	for _, p := range s.proxies {
		gave[p.Giver] = true
		m.Represented = append(m.Represented, Representation{
			Giver: ref(p.Giver), Holder: ref(p.Holder), Item: p.Item,
			From: in(p.GivenAt), Until: in(p.EndedAt), Ended: p.Ended,
		})
	}
	for _, st := range s.roster.Seats {
		if !st.InOffice() {
			continue
		}
		var chamber, remote []Period
		if a := s.seats[st.Number]; a != nil {
			for _, p := range a.periods {
				switch {
				case p.Place == InChamber:
					chamber = append(chamber, p)
				case !p.VerifiedAt.IsZero():
					remote = append(remote, p)
				}
			}
		}
		if len(chamber) > 0 {
			m.Chamber = append(m.Chamber, Attendee{MemberRef: ref(st.Number), Periods: periods(chamber)})
		}
		if len(remote) > 0 {
			m.Remote = append(m.Remote, Attendee{MemberRef: ref(st.Number), Periods: periods(remote)})
		}
		if len(chamber) == 0 && len(remote) == 0 && !gave[st.Number] {
			m.Absent = append(m.Absent, ref(st.Number))
		}
	}

	for _, orig := range s.items {
		it := copyItem(orig)
		im := ItemMinutes{ID: it.ID, Title: it.Title, Kind: it.Kind, InPersonOnly: it.InPersonOnly, Status: it.Status,
			OpenedAt: in(it.OpenedAt), ClosedAt: in(it.ClosedAt), Quorum: it.Quorum, PostponeReason: it.PostponeReason,
			QuorumIncidents: quorumIncidents(it.QuorumIncidents, in),
			SecretBallot:    it.SecretBallot}
		if sb := it.SecretBallot; sb != nil {
			sb.At = in(sb.At)
			for _, seat := range sb.Remote {
				im.RemoteAtSecretRequest = append(im.RemoteAtSecretRequest, ref(seat))
			}
		}
		if pv := it.PublicVote; pv != nil {
			im.PublicVote = &PublicVoteMinutes{Requesters: refs(pv.Requesters, ref), Present: pv.Present, At: in(pv.At)}
		}
		if d := it.PublicDecided; d != nil {
			d.At = in(d.At)
			im.PublicDecided = d
		}
		if it.Elected != 0 {
			e := ref(it.Elected)
			im.Elected = &e
		}
		for _, id := range it.Votes {
			found, _ := s.vote(id)
			v := copyVote(found)
			vm := VoteMinutes{ID: v.ID, Question: v.Question, Mode: v.Mode, OpenedAt: in(v.OpenedAt), ClosedAt: in(v.ClosedAt), Quorum: v.Quorum,
				Tally: v.Tally, Result: v.Result, Round: v.Round, Candidates: refs(v.Candidates, ref)}
			byCandidate := map[int][]Voter{}
			// Names follow the roster order, as a roll call reads them.
			for _, st := range s.roster.Seats {
				b, ok := v.ballotOf(st.Number)
				if !ok {
					continue
				}
				voter := Voter{MemberRef: ref(b.Seat)}
				if b.CastBy != b.Seat {
					by := ref(b.CastBy)
					voter.By = &by
				}
				if b.Keyed && v.Mode == Electronic {
					vm.recorded(b.RecordedBy, voter, ref)
				}
				switch b.Choice {
				case For:
					vm.For = append(vm.For, voter)
				case Against:
					vm.Against = append(vm.Against, voter)
				case Abstain:
					vm.Abstain = append(vm.Abstain, voter)
				case NotVoting:
					vm.NotVoting = append(vm.NotVoting, voter)
				case ForCandidate:
					byCandidate[b.Candidate] = append(byCandidate[b.Candidate], voter)
				case BlankPaper:
					vm.Blank = append(vm.Blank, voter)
				}
			}
			for _, c := range v.Candidates {
				if vs := byCandidate[c]; len(vs) > 0 {
					vm.ForCandidates = append(vm.ForCandidates, CandidateVoters{Candidate: ref(c), Voters: vs})
				}
			}
			if e := v.Election; e != nil {
				vm.Election = roundMinutes(*e, ref)
			}
			vm.NonVoters = refs(v.NonVoters, ref)
			for _, c := range v.Corrections {
				vm.Corrections = append(vm.Corrections, CorrectionMinutes{From: ballotMinutes(c.From, ref), To: ballotMinutes(c.To, ref),
					Reason: c.Reason, At: in(c.At), By: c.By})
			}
			im.Votes = append(im.Votes, vm)
		}
		m.Items = append(m.Items, im)
	}

	for _, st := range s.roster.Seats {
		var rec SpeakingRecord
		for _, sp := range s.floor.speeches {
			if sp.Seat == st.Number {
				rec.Speeches++
				rec.Total += sp.To.Sub(sp.From)
			}
		}
		if rec.Speeches > 0 {
			rec.Member = ref(st.Number)
			m.Speaking = append(m.Speaking, rec)
		}
	}
	for _, b := range s.bleeps {
		b.From, b.To = in(b.From), in(b.To)
		m.Bleeps = append(m.Bleeps, b)
	}
	for _, p := range sess.Suspensions {
		p.From, p.To = in(p.From), in(p.To)
		m.Suspensions = append(m.Suspensions, p)
	}
	for _, c := range sess.ClosedDoors {
		c.Requesters = slices.Clone(c.Requesters)
		c.From, c.To = in(c.From), in(c.To)
		m.ClosedDoors = append(m.ClosedDoors, c)
	}
	m.ClosedFor, m.ClosingQuorum, m.SecondConvocationFrom = sess.ClosedFor, sess.ClosingQuorum, in(sess.SecondConvocationFrom)
	return m
}

// quorumIncidents copies an item's quorum incidents with their times in the minutes' zone.
func quorumIncidents(list []QuorumIncident, in func(time.Time) time.Time) []QuorumIncident {
	var out []QuorumIncident
	for _, q := range list {
		q.At = in(q.At)
		out = append(out, q)
	}
	return out
}

func refs(seats []int, ref func(int) MemberRef) []MemberRef {
	var out []MemberRef
	for _, n := range seats {
		out = append(out, ref(n))
	}
	return out
}

func roundMinutes(e ElectionResult, ref func(int) MemberRef) *RoundMinutes {
	r := &RoundMinutes{Voters: e.Voters, Blank: e.Blank, Spoilt: e.Spoilt, Cast: e.Cast, Required: e.Required,
		Tied: refs(e.Tied, ref), ByAge: e.ByAge}
	for _, c := range e.Votes {
		r.Votes = append(r.Votes, CandidateCount{MemberRef: ref(c.Seat), Votes: c.Votes})
	}
	if e.Elected != 0 {
		el := ref(e.Elected)
		r.Elected = &el
	}
	return r
}

func ballotMinutes(b Ballot, ref func(int) MemberRef) BallotMinutes {
	m := BallotMinutes{Member: ref(b.Seat), Choice: b.Choice}
	if b.Candidate != 0 {
		c := ref(b.Candidate)
		m.Candidate = &c
	}
	return m
}

// recorded adds a ballot recorded by someone else than the voter to that person's list.
func (vm *VoteMinutes) recorded(by Actor, voter Voter, ref func(int) MemberRef) {
	for i := range vm.Recorded {
		if vm.Recorded[i].By == by {
			vm.Recorded[i].Voters = append(vm.Recorded[i].Voters, voter)
			return
		}
	}
	r := RecordedBallots{By: by, Voters: []Voter{voter}}
	if by.Seat != 0 {
		m := ref(by.Seat)
		r.Member = &m
	}
	vm.Recorded = append(vm.Recorded, r)
}
