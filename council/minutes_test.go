package council_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/council"
)

// markdown renders the sitting's minutes (times in UTC) with l.
func (s *sitting) markdown(l council.Labels) string {
	s.t.Helper()
	var b strings.Builder
	if err := council.DraftMinutes(s.st, time.UTC).WriteMarkdown(&b, &l); err != nil {
		s.t.Fatal(err)
	}
	return b.String()
}

func wantLines(t *testing.T, md string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(md, w) {
			t.Errorf("the minutes lack %q:\n%s", w, md)
		}
	}
}

// CGCT L2121-21 al. 3, as the procès-verbal must show it: each round with its figures, blank
// and spoilt papers counted apart and not among the votes cast (code électoral L65, L66), and
// the elected named with the rule that elected them: the absolute majority of the votes cast
// in the first two rounds, the relative majority in the third, the eldest on a tie.
func TestMinutesOfAnElectionFromTheText(t *testing.T) {
	eldest := map[int]string{3: "1970-05-02", 4: "1958-11-30", 5: "1990-01-01"}
	tie := paper{votes: map[int]int{3: 4, 4: 4, 5: 1}}
	cases := []struct {
		law    string
		born   map[int]string
		rounds []paper
		want   []string
	}{
		{"L2121-21 al. 3: elected in round 1 by the absolute majority of the votes cast", nil,
			[]paper{{votes: map[int]int{3: 5, 4: 2}, blank: 1, spoilt: 1}},
			[]string{
				"#### Vote E-1 — tour de scrutin n° 1\n",
				"- **Mode de scrutin** : au scrutin secret\n",
				"- **Candidats** : Member 3, Member 4, Member 5\n",
				"- **Votants** : 9\n- **Bulletins blancs** : 1\n- **Bulletins nuls** : 1\n- **Suffrages exprimés** : 7\n- **Majorité absolue** : 4\n",
				"- **Member 3** : 5 voix\n- **Member 4** : 2 voix\n- **Member 5** : 0 voix\n",
				"**Member 3 est élu(e) à la majorité absolue : 5 voix, 4 requises sur 7 suffrages exprimés**\n",
				"- **Élu(e)** : Member 3\n",
			}},
		{"L2121-21 al. 3: half the votes cast is no absolute majority", nil,
			[]paper{{votes: map[int]int{3: 4, 4: 4, 5: 1}}},
			[]string{
				"- **Suffrages exprimés** : 9\n- **Majorité absolue** : 5\n",
				"**Aucun candidat n'obtient la majorité absolue (5 voix requises) : un nouveau tour est nécessaire**\n",
			}},
		{"L2121-21 al. 3: round 3 at the relative majority", nil,
			[]paper{tie, tie, {votes: map[int]int{3: 3, 4: 4, 5: 2}}},
			[]string{
				"#### Vote E-2 — tour de scrutin n° 2\n",
				"#### Vote E-3 — tour de scrutin n° 3\n",
				"**Member 4 est élu(e) à la majorité relative (CGCT L2121-21) : 4 voix**\n",
				"- **Élu(e)** : Member 4\n",
			}},
		{"L2121-21 al. 3: a tie in round 3 goes to the eldest", eldest,
			[]paper{tie, tie, tie},
			[]string{
				"**Member 4 est élu(e) au bénéfice de l'âge : 4 voix chacun pour Member 3, Member 4, l'élection est acquise au plus âgé (CGCT L2121-21)**\n",
				"- **Élu(e)** : Member 4\n",
			}},
		{"L2121-21 al. 3: without the birth dates the tie stands, and the minutes say why", nil,
			[]paper{tie, tie, tie},
			[]string{
				"**Égalité de voix (4 chacun) entre Member 3, Member 4 : le plus âgé ne peut être désigné, une date de naissance manquant au tableau ou étant commune**\n",
			}},
	}
	for _, c := range cases {
		t.Run(c.law, func(t *testing.T) {
			s := electionSitting(t, "election", c.born)
			for i, p := range c.rounds {
				s.round("E-"+string(rune('1'+i)), p)
			}
			md := s.markdown(council.FrenchLabels())
			wantLines(t, md, c.want...)
			if strings.Contains(c.law, "without the birth dates") && strings.Contains(md, "Élu(e)") {
				t.Errorf("nobody was elected, but the minutes name someone:\n%s", md)
			}
		})
	}

	s := electionSitting(t, "election", eldest)
	for _, id := range []string{"E-1", "E-2", "E-3"} {
		s.round(id, tie)
	}
	wantLines(t, s.markdown(council.EnglishLabels()),
		"#### Vote E-3 — round 3\n",
		"- **Voters**: 9\n- **Blank papers**: 0\n- **Spoilt papers**: 0\n- **Votes cast**: 9\n",
		"**Member 4 is elected as the eldest: 4 votes each for Member 3, Member 4, and a tie goes to the eldest (CGCT L2121-21)**\n",
		"- **Elected**: Member 4\n")
}

// CGCT L2121-21 al. 1: "Le registre des délibérations comporte le nom des votants et
// l'indication du sens de leur vote": a public vote asked by a quarter of the members present
// is recorded with those who asked and each member's vote by name; a ballot the clerk keyed
// wrongly and corrected shows both values, when, by whom and why.
func TestMinutesOfAPublicVoteAndItsCorrections(t *testing.T) {
	s := newSitting(t, "fr-commune", 9)
	s.arrive(1, 8)
	s.addItem("1", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "1"})
	asked := s.chair()
	s.do(council.RequestPublicVote{Header: asked, Item: "1", Requesters: []int{2, 3, 4}})
	s.do(council.OpenVote{Header: s.chair(), ID: "1-1", Item: "1", Mode: council.RollCall})
	for seat, choice := range map[int]council.Choice{1: council.For, 2: council.For, 3: council.Against, 4: council.Abstain, 5: council.For, 6: council.NotVoting} {
		s.do(council.CastBallot{Header: s.clerk(), Vote: "1-1", Seat: seat, Choice: choice})
	}
	fixed := s.clerk()
	s.do(council.CorrectBallot{Header: fixed, Vote: "1-1", Seat: 2, Choice: council.Against, Reason: "réponse mal entendue"})
	moved := s.clerk()
	s.do(council.CorrectBallot{Header: moved, Vote: "1-1", Seat: 6, ToSeat: 7, Choice: council.For, Reason: "saisi sur la ligne du siège 6"})
	// Seat 6's ballot went to seat 7; 6 and 8, present, did not answer.
	s.do(council.CloseVote{Header: s.chair(), Vote: "1-1", NonVoters: []int{6, 8}})
	clock := func(l council.Labels, h council.Header) string { return h.At.UTC().Format(l.TimeLayout) }

	fr := council.FrenchLabels()
	wantLines(t, s.markdown(fr),
		"- **Scrutin public** : demandé à "+clock(fr, asked)+" par Member 2, Member 3, Member 4, soit 3 des 8 membres présents (CGCT L2121-21) : chaque vote est inscrit au nom de son auteur\n",
		"- **Mode de scrutin** : par appel nominal\n",
		"- **Pour (3)** : Member 1, Member 5, Member 7\n",
		"- **Contre (2)** : Member 2, Member 3\n",
		"- **Abstentions (1)** : Member 4\n",
		"- **N'ont pas pris part au vote (2)** : Member 6, Member 8\n",
		"- **Correction** : bulletin saisi « Member 2 : pour » corrigé en « Member 2 : contre » à "+clock(fr, fixed)+" par clerk (secrétariat de séance) ; motif : réponse mal entendue\n",
		"- **Correction** : bulletin saisi « Member 6 : ne prend pas part au vote » corrigé en « Member 7 : pour » à "+clock(fr, moved)+" par clerk (secrétariat de séance) ; motif : saisi sur la ligne du siège 6\n",
		"**Adopté — ")
	en := council.EnglishLabels()
	wantLines(t, s.markdown(en),
		"- **Public vote**: requested at "+clock(en, asked)+" by Member 2, Member 3, Member 4, 3 of the 8 members present (CGCT L2121-21)",
		"- **Correction**: ballot keyed “Member 2: for” corrected to “Member 2: against” at "+clock(en, fixed)+" by clerk (clerk); reason: réponse mal entendue\n")
}

// CGCT L2121-21 al. 4: the council may decide unanimously not to vote by secret ballot on a
// nomination; the minutes record the decision, and the round's papers by name.
func TestMinutesOfANominationVotedPublicly(t *testing.T) {
	s := electionSitting(t, "nomination", nil)
	decided := s.chair()
	s.do(council.DecidePublicVote{Header: decided, Item: "E"})
	s.do(council.OpenVote{Header: s.chair(), ID: "E-1", Item: "E", Mode: council.RollCall})
	for seat := 1; seat <= 9; seat++ {
		c := council.CastBallot{Header: s.clerk(), Vote: "E-1", Seat: seat, Candidate: 3}
		switch {
		case seat >= 7 && seat <= 8:
			c.Candidate = 4
		case seat == 9:
			c.Candidate, c.Choice = 0, council.BlankPaper
		}
		s.do(c)
	}
	fixed := s.clerk()
	s.do(council.CorrectBallot{Header: fixed, Vote: "E-1", Seat: 6, Candidate: 5, Reason: "nom mal entendu"})
	s.do(council.CloseVote{Header: s.chair(), Vote: "E-1"})
	fr := council.FrenchLabels()
	wantLines(t, s.markdown(fr),
		"- **Scrutin public** : le conseil a décidé à l'unanimité des 9 membres présents, à "+decided.At.UTC().Format(fr.TimeLayout)+", de ne pas procéder au scrutin secret (CGCT L2121-21)\n",
		"- **Mode de scrutin** : par appel nominal\n",
		"- **Pour Member 3 (5)** : Member 1, Member 2, Member 3, Member 4, Member 5\n",
		"- **Pour Member 4 (2)** : Member 7, Member 8\n",
		"- **Pour Member 5 (1)** : Member 6\n",
		"- **Bulletins blancs (1)** : Member 9\n",
		"- **Votants** : 9\n- **Bulletins blancs** : 1\n- **Bulletins nuls** : 0\n- **Suffrages exprimés** : 8\n- **Majorité absolue** : 5\n",
		"- **Correction** : bulletin saisi « Member 6 : vote pour Member 3 » corrigé en « Member 6 : vote pour Member 5 » à "+fixed.At.UTC().Format(fr.TimeLayout),
		"**Member 3 est élu(e) à la majorité absolue : 5 voix, 5 requises sur 8 suffrages exprimés**\n")
}
