package council

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Profile holds a body's deliberation rules as data, so that one code base
// serves a commune, an intercommunal council or an association. The shipped
// profiles live in configs/profiles with the legal source of every field.
type Profile struct {
	ID        string
	Title     string
	Quorum    QuorumRule
	Proxies   ProxyRule
	Remote    RemoteRule
	Votes     VoteRule
	Broadcast BroadcastRule
	// Items is the closed list of agenda item kinds with their rules.
	Items      []ItemKind
	Elections  ElectionRule
	ClosedDoor ClosedDoorRule
	// Convocation is the legal delay of the convocation (convocation.go); nil when the
	// profile sets none.
	Convocation *ConvocationRule
}

// ElectionRule is how elections and nominations are decided.
type ElectionRule struct {
	// AbsoluteRounds is the number of rounds that need an absolute majority of the votes cast;
	// the next round is decided by relative majority, and is the last.
	AbsoluteRounds int
	// Tie says who wins a tie in the last round.
	Tie TieBreak
	// ListMethod shares the seats of a list election.
	ListMethod ListMethod
}

// TieBreak settles a tie between candidates.
type TieBreak string

const TieEldest TieBreak = "eldest"

// ListMethod shares seats between lists.
type ListMethod string

const LargestRemainder ListMethod = "largest-remainder"

// ClosedDoorRule is how the body decides to sit in private.
type ClosedDoorRule struct {
	// Requesters is how many members may ask for it (the chair may ask alone).
	Requesters int
	// Majority of the members present or represented needed to decide it.
	Majority Fraction
}

// Fraction is a share such as 1/2 or 1/3, kept exact so that thresholds on
// small councils are not off by one through rounding.
type Fraction struct{ Num, Den int }

func (f Fraction) String() string { return fmt.Sprintf("%d/%d", f.Num, f.Den) }

// ParseFraction reads "1/2"; the share must lie in (0, 1].
func ParseFraction(s string) (Fraction, error) {
	num, den, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Fraction{}, fmt.Errorf("%q is not a fraction like 1/2", s)
	}
	n, err1 := strconv.Atoi(strings.TrimSpace(num))
	d, err2 := strconv.Atoi(strings.TrimSpace(den))
	if err1 != nil || err2 != nil {
		return Fraction{}, fmt.Errorf("%q is not a fraction like 1/2", s)
	}
	if d <= 0 || n <= 0 || n > d {
		return Fraction{}, fmt.Errorf("%q must be a share between 0 (excluded) and 1", s)
	}
	return Fraction{Num: n, Den: d}, nil
}

// Comparison says whether a threshold must be passed ("more than half") or
// only reached ("at least a third").
type Comparison string

const (
	MoreThan Comparison = "more-than"
	AtLeast  Comparison = "at-least"
)

// Threshold is the smallest whole count satisfying the fraction of n.
// 33 members: more than 1/2 is 17; at least 1/3 is 11; 34: at least 1/3 is 12.
func Threshold(n int, f Fraction, c Comparison) int {
	if c == MoreThan {
		return n*f.Num/f.Den + 1
	}
	return (n*f.Num + f.Den - 1) / f.Den
}

// QuorumBasis is the number the quorum fraction applies to.
type QuorumBasis string

const (
	BasisInOffice QuorumBasis = "in-office" // members in office (vacant seats excluded)
	BasisSeats    QuorumBasis = "seats"     // every seat of the body, vacant or not
)

// QuorumCounting says who counts towards the quorum.
type QuorumCounting string

const (
	CountPresent              QuorumCounting = "present"
	CountPresentOrRepresented QuorumCounting = "present-or-represented"
)

type QuorumRule struct {
	Fraction   Fraction
	Comparison Comparison
	Of         QuorumBasis
	Counts     QuorumCounting
	// RemoteCounts: verified remote members count as present.
	RemoteCounts bool
	// WaivedOnSecondConvocation: a session convened again for want of a
	// quorum deliberates whatever the attendance.
	WaivedOnSecondConvocation bool
	// SecondConvocationDays is the least number of days between a sitting closed for want of
	// a quorum and the second convocation's sitting.
	SecondConvocationDays int
}

// GiverArrival says what becomes of a proxy when its giver turns up.
type GiverArrival string

const (
	// Suspend: the giver votes in person while present; the proxy applies
	// again if the giver leaves.
	GiverSuspends GiverArrival = "suspend"
	// Revoke: the proxy ends for the rest of the session.
	GiverRevokes GiverArrival = "revoke"
)

type ProxyRule struct {
	PerHolder      int // 0: no proxies at all
	OnGiverArrival GiverArrival
}

type RemoteRule struct {
	Allowed bool
	// VoteModes allowed while at least one remote member takes part.
	VoteModes []VoteMode
	// DepartureGrace is how long a lost connection may last before the
	// caller records a departure. council itself never waits.
	DepartureGrace time.Duration
}

// VoteMode is how a vote is taken.
type VoteMode string

const (
	ShowOfHands VoteMode = "show-of-hands"
	RollCall    VoteMode = "roll-call"
	Electronic  VoteMode = "electronic"
	Secret      VoteMode = "secret"
)

func (m VoteMode) valid() bool {
	switch m {
	case ShowOfHands, RollCall, Electronic, Secret:
		return true
	}
	return false
}

// MajorityBasis is the number the majority fraction applies to.
type MajorityBasis string

const (
	MajorityOfCast     MajorityBasis = "cast"      // for + against
	MajorityOfVoters   MajorityBasis = "voters"    // present and represented when the vote opened
	MajorityOfInOffice MajorityBasis = "in-office" // members in office
)

type MajorityRule struct {
	Fraction   Fraction
	Comparison Comparison
	Of         MajorityBasis
}

// CastingVote says when the chair's own ballot settles a tie.
type CastingVote string

const (
	CastingOnPublicVotes CastingVote = "public"
	CastingNever         CastingVote = "none"
)

// SecretWithRemote says what happens to an adopted secret-ballot request
// while remote members take part.
type SecretWithRemote string

const (
	SecretPostpones SecretWithRemote = "postpone" // the item goes to a later in-person session
	SecretRefused   SecretWithRemote = "refuse"   // the request is refused; the vote stays public
)

type SecretBallotRule struct {
	// Request is the share of members present who must ask for a secret
	// ballot (at least that share).
	Request    Fraction
	WithRemote SecretWithRemote
}

type VoteRule struct {
	Modes        []VoteMode
	Majority     MajorityRule
	CastingVote  CastingVote
	SecretBallot SecretBallotRule
	// PublicRequest is the share of members present who may require a vote by name (at
	// least that share).
	PublicRequest Fraction
}

type BroadcastRule struct {
	// Required: the caller must broadcast the session live; council records it only.
	Required bool
}

// profileFile mirrors the YAML with pointers so that a missing field can be
// told from a zero one: a legal profile must state every rule.
type profileFile struct {
	ID     *string `yaml:"id"`
	Title  *string `yaml:"title"`
	Quorum *struct {
		Fraction                  *string `yaml:"fraction"`
		Comparison                *string `yaml:"comparison"`
		Of                        *string `yaml:"of"`
		Counts                    *string `yaml:"counts"`
		RemoteCounts              *bool   `yaml:"remote_counts"`
		WaivedOnSecondConvocation *bool   `yaml:"waived_on_second_convocation"`
		SecondConvocationDays     *int    `yaml:"second_convocation_days"`
	} `yaml:"quorum"`
	Proxies *struct {
		PerHolder      *int    `yaml:"per_holder"`
		OnGiverArrival *string `yaml:"on_giver_arrival"`
	} `yaml:"proxies"`
	Remote *struct {
		Allowed        *bool     `yaml:"allowed"`
		VoteModes      *[]string `yaml:"vote_modes"`
		DepartureGrace *string   `yaml:"departure_grace"`
	} `yaml:"remote"`
	Votes *struct {
		Modes    *[]string `yaml:"modes"`
		Majority *struct {
			Fraction   *string `yaml:"fraction"`
			Comparison *string `yaml:"comparison"`
			Of         *string `yaml:"of"`
		} `yaml:"majority"`
		CastingVote  *string `yaml:"casting_vote"`
		SecretBallot *struct {
			Request    *string `yaml:"request"`
			WithRemote *string `yaml:"with_remote"`
		} `yaml:"secret_ballot"`
		PublicVote *struct {
			Request *string `yaml:"request"`
		} `yaml:"public_vote"`
	} `yaml:"votes"`
	Broadcast *struct {
		Required *bool `yaml:"required"`
	} `yaml:"broadcast"`
	Items     *[]itemKindFile `yaml:"items"`
	Elections *struct {
		AbsoluteRounds *int    `yaml:"absolute_rounds"`
		Tie            *string `yaml:"tie"`
		ListMethod     *string `yaml:"list_method"`
	} `yaml:"elections"`
	ClosedDoor *struct {
		Requesters *int    `yaml:"requesters"`
		Majority   *string `yaml:"majority"`
	} `yaml:"closed_door"`
	Convocation *ConvocationRule `yaml:"convocation"`
}

// profileCheck gathers every problem with its field path, so that one run
// of the loader tells the author all that is wrong.
type profileCheck struct{ problems []string }

func (c *profileCheck) bad(field, format string, args ...any) {
	c.problems = append(c.problems, field+": "+fmt.Sprintf(format, args...))
}

func (c *profileCheck) missing(field string) { c.bad(field, "missing") }

func str(c *profileCheck, field string, p *string) string {
	if p == nil {
		c.missing(field)
		return ""
	}
	if strings.TrimSpace(*p) == "" {
		c.bad(field, "empty")
	}
	return *p
}

func boolean(c *profileCheck, field string, p *bool) bool {
	if p == nil {
		c.missing(field)
		return false
	}
	return *p
}

// count reads a whole number that may not be negative.
func count(c *profileCheck, field string, p *int) int {
	if p == nil {
		c.missing(field)
		return 0
	}
	if *p < 0 {
		c.bad(field, "%d is negative", *p)
	}
	return *p
}

func fraction(c *profileCheck, field string, p *string) Fraction {
	if p == nil {
		c.missing(field)
		return Fraction{}
	}
	f, err := ParseFraction(*p)
	if err != nil {
		c.bad(field, "%v", err)
	}
	return f
}

// oneOf checks an enumerated value and returns it typed.
func oneOf[T ~string](c *profileCheck, field string, p *string, allowed ...T) T {
	if p == nil {
		c.missing(field)
		return ""
	}
	v := T(*p)
	if !slices.Contains(allowed, v) {
		names := make([]string, len(allowed))
		for i, a := range allowed {
			names[i] = string(a)
		}
		c.bad(field, "%q is not one of %s", *p, strings.Join(names, ", "))
	}
	return v
}

func modes(c *profileCheck, field string, p *[]string) []VoteMode {
	if p == nil {
		c.missing(field)
		return nil
	}
	out := make([]VoteMode, 0, len(*p))
	for i, s := range *p {
		m := VoteMode(s)
		if !m.valid() {
			c.bad(fmt.Sprintf("%s[%d]", field, i), "%q is not a vote mode (show-of-hands, roll-call, electronic, secret)", s)
			continue
		}
		if slices.Contains(out, m) {
			c.bad(fmt.Sprintf("%s[%d]", field, i), "%q listed twice", s)
			continue
		}
		out = append(out, m)
	}
	return out
}

// ParseProfile reads and validates a YAML legal profile. Unknown fields are
// errors (a misspelt rule must not silently fall back to a default), and
// every error names the field.
func ParseProfile(data []byte) (*Profile, error) {
	var f profileFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse profile: %w", err)
	}
	var c profileCheck
	p := &Profile{}
	p.ID = str(&c, "id", f.ID)
	p.Title = str(&c, "title", f.Title)

	if q := f.Quorum; q == nil {
		c.missing("quorum")
	} else {
		p.Quorum = QuorumRule{
			Fraction:                  fraction(&c, "quorum.fraction", q.Fraction),
			Comparison:                oneOf(&c, "quorum.comparison", q.Comparison, MoreThan, AtLeast),
			Of:                        oneOf(&c, "quorum.of", q.Of, BasisInOffice, BasisSeats),
			Counts:                    oneOf(&c, "quorum.counts", q.Counts, CountPresent, CountPresentOrRepresented),
			RemoteCounts:              boolean(&c, "quorum.remote_counts", q.RemoteCounts),
			WaivedOnSecondConvocation: boolean(&c, "quorum.waived_on_second_convocation", q.WaivedOnSecondConvocation),
			SecondConvocationDays:     count(&c, "quorum.second_convocation_days", q.SecondConvocationDays),
		}
	}

	if x := f.Proxies; x == nil {
		c.missing("proxies")
	} else {
		if x.PerHolder == nil {
			c.missing("proxies.per_holder")
		} else if *x.PerHolder < 0 {
			c.bad("proxies.per_holder", "%d is negative", *x.PerHolder)
		} else {
			p.Proxies.PerHolder = *x.PerHolder
		}
		p.Proxies.OnGiverArrival = oneOf(&c, "proxies.on_giver_arrival", x.OnGiverArrival, GiverSuspends, GiverRevokes)
	}

	if r := f.Remote; r == nil {
		c.missing("remote")
	} else {
		p.Remote.Allowed = boolean(&c, "remote.allowed", r.Allowed)
		p.Remote.VoteModes = modes(&c, "remote.vote_modes", r.VoteModes)
		if g := str(&c, "remote.departure_grace", r.DepartureGrace); g != "" {
			d, err := time.ParseDuration(g)
			if err != nil || d < 0 {
				c.bad("remote.departure_grace", "%q is not a duration like 30s or 2m", g)
			}
			p.Remote.DepartureGrace = d
		}
		if p.Remote.Allowed && r.VoteModes != nil && len(p.Remote.VoteModes) == 0 {
			c.bad("remote.vote_modes", "remote participation is allowed but no vote mode is")
		}
		if slices.Contains(p.Remote.VoteModes, Secret) {
			c.bad("remote.vote_modes", "a secret ballot cannot be held with remote members (ballots are counted in the chamber)")
		}
	}

	if v := f.Votes; v == nil {
		c.missing("votes")
	} else {
		p.Votes.Modes = modes(&c, "votes.modes", v.Modes)
		if v.Modes != nil && len(p.Votes.Modes) == 0 {
			c.bad("votes.modes", "no vote mode allowed")
		}
		if m := v.Majority; m == nil {
			c.missing("votes.majority")
		} else {
			p.Votes.Majority = MajorityRule{
				Fraction:   fraction(&c, "votes.majority.fraction", m.Fraction),
				Comparison: oneOf(&c, "votes.majority.comparison", m.Comparison, MoreThan, AtLeast),
				Of:         oneOf(&c, "votes.majority.of", m.Of, MajorityOfCast, MajorityOfVoters, MajorityOfInOffice),
			}
		}
		p.Votes.CastingVote = oneOf(&c, "votes.casting_vote", v.CastingVote, CastingOnPublicVotes, CastingNever)
		if s := v.SecretBallot; s == nil {
			c.missing("votes.secret_ballot")
		} else {
			p.Votes.SecretBallot = SecretBallotRule{
				Request:    fraction(&c, "votes.secret_ballot.request", s.Request),
				WithRemote: oneOf(&c, "votes.secret_ballot.with_remote", s.WithRemote, SecretPostpones, SecretRefused),
			}
		}
		if pv := v.PublicVote; pv == nil {
			c.missing("votes.public_vote")
		} else {
			p.Votes.PublicRequest = fraction(&c, "votes.public_vote.request", pv.Request)
		}
		for _, m := range p.Remote.VoteModes {
			if v.Modes != nil && !slices.Contains(p.Votes.Modes, m) {
				c.bad("remote.vote_modes", "%q is not in votes.modes", m)
			}
		}
	}

	if b := f.Broadcast; b == nil {
		c.missing("broadcast")
	} else {
		p.Broadcast.Required = boolean(&c, "broadcast.required", b.Required)
	}

	p.Items = parseKinds(&c, f.Items)
	if e := f.Elections; e == nil {
		c.missing("elections")
	} else {
		p.Elections = ElectionRule{
			AbsoluteRounds: count(&c, "elections.absolute_rounds", e.AbsoluteRounds),
			Tie:            oneOf(&c, "elections.tie", e.Tie, TieEldest),
			ListMethod:     oneOf(&c, "elections.list_method", e.ListMethod, LargestRemainder),
		}
	}
	if cd := f.ClosedDoor; cd == nil {
		c.missing("closed_door")
	} else {
		p.ClosedDoor = ClosedDoorRule{
			Requesters: count(&c, "closed_door.requesters", cd.Requesters),
			Majority:   fraction(&c, "closed_door.majority", cd.Majority),
		}
	}
	if cv := f.Convocation; cv != nil {
		if cv.ClearDays < 1 || cv.EmergencyClearDays < 0 || cv.EmergencyClearDays > cv.ClearDays ||
			(cv.FromPopulation > 0) != (cv.ClearDaysFrom > 0) {
			c.bad("convocation", "clear_days must be at least 1, emergency_clear_days between 0 and it, and from_population with clear_days_from together")
		}
		p.Convocation = cv
	}

	if len(c.problems) > 0 {
		name := p.ID
		if name == "" {
			name = "(no id)"
		}
		return nil, fmt.Errorf("profile %s: %w", name, errors.New(strings.Join(c.problems, "; ")))
	}
	return p, nil
}

// inPersonOnly reports whether items of this kind are taken in person only.
func (p *Profile) inPersonOnly(kind string) bool {
	k, ok := p.Kind(kind)
	return ok && k.InPerson
}
