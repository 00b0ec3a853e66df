package council_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/council"
)

// Item kinds are a closed list in the profile: a kind it does not know is refused with the
// list, in English and French, and an item added without a kind is a deliberation.
func TestUnknownItemKindIsRefusedWithTheValidKinds(t *testing.T) {
	for _, id := range []string{"fr-commune", "fr-epci-visio", "fr-2020-emergency", "generic"} {
		s := newSitting(t, id, 5)
		for _, kind := range []string{"Budget", "budget", "election-of-president"} {
			err := s.refused(council.AddItem{Header: s.chair(), ID: "1", Title: "Budget", Kind: kind}, council.ErrInvalid)
			for _, want := range []string{"unknown item kind " + `"` + kind + `"`, "deliberation, budget-primitif, compte-administratif, election, nomination", "type de point inconnu"} {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("%s: refusal %q does not say %q", id, err, want)
				}
			}
		}
		s.addItem("1", "")
		if it, _ := s.st.Item("1"); it.Kind != council.DefaultKind {
			t.Fatalf("%s: item without a kind recorded as %q", id, it.Kind)
		}
	}
}

// Each kind's rules, as the shipped profiles state them from the texts.
func TestItemKindRulesFromTheTexts(t *testing.T) {
	cases := []struct {
		law, profile, kind string
		want               council.ItemKind
	}{
		{"CGCT L2121-21: an ordinary deliberation is public, secret on request", "fr-commune", "deliberation",
			council.ItemKind{Vote: council.VoteMotion, Secret: council.SecretOnRequest}},
		{"CGCT L2121-14: the mayor does not preside over the compte administratif", "fr-commune", "compte-administratif",
			council.ItemKind{Vote: council.VoteMotion, Secret: council.SecretOnRequest, ChairWithdraws: true}},
		{"CGCT L2122-7: the mayor is elected by secret ballot", "fr-commune", "election",
			council.ItemKind{Vote: council.VoteElection, Secret: council.SecretRequired}},
		{"CGCT L2121-21 al. 4: nominations secret unless unanimously waived", "fr-commune", "nomination",
			council.ItemKind{Vote: council.VoteElection, Secret: council.SecretByDefault}},
		{"CGCT L1411-5 II: the commission d'appel d'offres is elected by list", "fr-commune", "commission-appel-offres",
			council.ItemKind{Vote: council.VoteListElection, Secret: council.SecretByDefault}},
		{"CGCT L2121-13: an information item puts nothing to the vote", "fr-commune", "information",
			council.ItemKind{Vote: council.VoteNone, Secret: council.SecretOnRequest}},
		{"CGCT L5211-11-1: the budget primitif is not adopted in several places", "fr-epci-visio", "budget-primitif",
			council.ItemKind{Vote: council.VoteMotion, Secret: council.SecretOnRequest, InPerson: true}},
		{"CGCT L5211-11-1: the president and bureau are not elected in several places", "fr-epci-visio", "election",
			council.ItemKind{Vote: council.VoteElection, Secret: council.SecretRequired, InPerson: true}},
		{"CGCT L5211-11-1: no appointments under L2121-33 in several places", "fr-epci-visio", "nomination",
			council.ItemKind{Vote: council.VoteElection, Secret: council.SecretByDefault, InPerson: true}},
	}
	for _, c := range cases {
		t.Run(c.law, func(t *testing.T) {
			k, ok := loadProfile(t, c.profile).Kind(c.kind)
			c.want.Name = c.kind
			if !ok || k != c.want {
				t.Fatalf("%s %s = %+v, want %+v", c.profile, c.kind, k, c.want)
			}
		})
	}
}

// CGCT L2121-14: "Dans les séances où le compte administratif du maire est débattu, le conseil
// municipal élit son président. [...] le maire peut [...] assister à la discussion ; mais il
// doit se retirer au moment du vote."
func TestComptAdministratifChairWithdrawsL2121_14(t *testing.T) {
	s := newSitting(t, "fr-commune", 5)
	s.arrive(1, 5)
	s.addItem("CA", "compte-administratif")
	err := s.refused(council.OpenItem{Header: s.chair(), ID: "CA"}, council.ErrNotEntitled)
	if !strings.Contains(err.Error(), "seat 1, who opened the sitting, presides") {
		t.Fatalf("refusal %q", err)
	}
	s.do(council.ChangeChair{Header: s.chair(), Seat: 3})
	presiding := s.tick(council.Actor{Identity: "chloe", Seat: 3, Role: council.RoleChair})
	s.do(council.OpenItem{Header: presiding, ID: "CA"})
	// The mayor may attend the discussion, not the vote.
	err = s.refused(council.OpenVote{Header: s.tick(presiding.By), ID: "CA-1", Item: "CA", Mode: council.ShowOfHands}, council.ErrState)
	if !strings.Contains(err.Error(), "seat 1 must withdraw before the vote (CGCT L2121-14)") {
		t.Fatalf("refusal %q", err)
	}
	s.do(council.RecordDeparture{Header: s.clerk(), Seat: 1, Reason: council.Withdrew})
	s.do(council.OpenVote{Header: s.tick(presiding.By), ID: "CA-1", Item: "CA", Mode: council.ShowOfHands})
	s.ballots("CA-1", council.For, 2, 3, 4)
	s.do(council.CloseVote{Header: s.tick(presiding.By), Vote: "CA-1", NonVoters: []int{5}})
	if r := s.result("CA-1"); !r.Adopted || r.Chair != 3 {
		t.Fatalf("result %+v, want adopted under seat 3", r)
	}
	// Back in the room, the mayor takes the chair again once the vote is over.
	s.arrive(1, 1)
	s.do(council.ChangeChair{Header: s.tick(presiding.By), Seat: 1})
	s.do(council.CloseItem{Header: s.chair(), ID: "CA"})
}

// The minutes name an item's kind in their own language, and say nothing of an ordinary
// deliberation's (issue 13: no raw kind names in French text).
func TestMinutesNameTheItemKindInTheirLanguage(t *testing.T) {
	s := newSitting(t, "fr-commune", 5)
	s.addItem("1", "deliberation")
	s.addItem("2", "budget-primitif")
	s.addItem("3", "compte-administratif")
	m := council.DraftMinutes(s.st, time.UTC)
	for _, c := range []struct {
		name           string
		labels         *council.Labels
		want, wantNone []string
	}{
		{"French", nil, []string{"### Point 2 — Item 2\n\n- **Nature** : budget primitif\n", "### Point 3 — Item 3\n\n- **Nature** : compte administratif\n"},
			[]string{"Point 1 — Item 1\n\n- **Nature**", "budget-primitif", "compte-administratif", "deliberation"}},
		{"English", ptr(council.EnglishLabels()), []string{"- **Kind**: budget-primitif\n", "- **Kind**: compte-administratif\n"},
			[]string{"Item 1 — Item 1\n\n- **Kind**"}},
	} {
		var b strings.Builder
		if err := m.WriteMarkdown(&b, c.labels); err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: the minutes lack %q:\n%s", c.name, w, b.String())
			}
		}
		for _, w := range c.wantNone {
			if strings.Contains(b.String(), w) {
				t.Errorf("%s: the minutes say %q:\n%s", c.name, w, b.String())
			}
		}
	}
}
