package council_test

import (
	"strings"
	"testing"

	"github.com/ingeco/hemicycle/council"
)

func TestThreshold(t *testing.T) {
	cases := []struct {
		n    int
		f    council.Fraction
		c    council.Comparison
		want int
	}{
		{33, council.Fraction{Num: 1, Den: 2}, council.MoreThan, 17}, // CGCT L2121-17
		{32, council.Fraction{Num: 1, Den: 2}, council.MoreThan, 17},
		{33, council.Fraction{Num: 1, Den: 3}, council.AtLeast, 11}, // loi 2020-290 art. 10
		{34, council.Fraction{Num: 1, Den: 3}, council.AtLeast, 12},
		{21, council.Fraction{Num: 1, Den: 3}, council.AtLeast, 7}, // L2121-21: a third of 21 present
		{20, council.Fraction{Num: 1, Den: 2}, council.MoreThan, 11},
		{0, council.Fraction{Num: 1, Den: 2}, council.MoreThan, 1},
	}
	for _, c := range cases {
		if got := council.Threshold(c.n, c.f, c.c); got != c.want {
			t.Errorf("Threshold(%d, %s, %s) = %d, want %d", c.n, c.f, c.c, got, c.want)
		}
	}
}

func TestShippedProfilesSayWhatTheLawSays(t *testing.T) {
	commune := loadProfile(t, "fr-commune")
	epci := loadProfile(t, "fr-epci-visio")
	emergency := loadProfile(t, "fr-2020-emergency")
	generic := loadProfile(t, "generic")
	checks := []struct {
		law string
		ok  bool
	}{
		{"L2121-17: majority of members in office, present only", commune.Quorum.Fraction == council.Fraction{Num: 1, Den: 2} &&
			commune.Quorum.Comparison == council.MoreThan && commune.Quorum.Counts == council.CountPresent && commune.Quorum.Of == council.BasisInOffice},
		{"L2121-20: one proxy per holder", commune.Proxies.PerHolder == 1 && epci.Proxies.PerHolder == 1},
		{"L2121-20: casting vote on public votes", commune.Votes.CastingVote == council.CastingOnPublicVotes},
		{"communes do not meet remotely", !commune.Remote.Allowed},
		{"L5211-11-1: remote allowed and counted", epci.Remote.Allowed && epci.Quorum.RemoteCounts},
		{"L5211-11-1: roll call or electronic only", len(epci.Remote.VoteModes) == 2},
		{"L5211-11-1: budget in person", func() bool { k, ok := epci.Kind("budget-primitif"); return ok && k.InPerson }()},
		{"L5211-11-1: secret request postpones", epci.Votes.SecretBallot.WithRemote == council.SecretPostpones},
		{"L5211-11-1: live broadcast", epci.Broadcast.Required},
		{"loi 2020-290 art. 10: a third, present or represented, two proxies", emergency.Quorum.Fraction == council.Fraction{Num: 1, Den: 3} &&
			emergency.Quorum.Comparison == council.AtLeast && emergency.Quorum.Counts == council.CountPresentOrRepresented && emergency.Proxies.PerHolder == 2},
		{"generic parses", generic.ID == "generic"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("profile does not encode: %s", c.law)
		}
	}
}

func TestParseProfileNamesTheBadField(t *testing.T) {
	base := string(mustRead(t, "fr-commune"))
	cases := []struct {
		name, from, to, want string
	}{
		{"bad fraction", `fraction: "1/2"`, `fraction: "3/2"`, "quorum.fraction:"},
		{"zero denominator", `fraction: "1/2"`, `fraction: "1/0"`, "quorum.fraction:"},
		{"unknown comparison", "comparison: more-than #", "comparison: most #", `quorum.comparison: "most" is not one of more-than, at-least`},
		{"unknown basis", "of: in-office", "of: everyone", "quorum.of:"},
		{"missing counts", "  counts: present\n", "", "quorum.counts: missing"},
		{"negative proxies", "per_holder: 1", "per_holder: -1", "proxies.per_holder: -1 is negative"},
		{"bad vote mode", "modes: [show-of-hands,", "modes: [hands-up,", `votes.modes[0]: "hands-up" is not a vote mode`},
		{"bad duration", "departure_grace: 60s", "departure_grace: soon", "remote.departure_grace:"},
		{"unknown field", "per_holder: 1", "per_holder: 1\n  per_holdr: 2", "per_holdr"},
		{"missing section", "broadcast:\n", "broadcastt:\n", "broadcastt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(base, c.from, c.to, 1)
			if text == base {
				t.Fatalf("test edit %q not applied", c.from)
			}
			_, err := council.ParseProfile([]byte(text))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestParseProfileRejectsIncoherentRemoteModes(t *testing.T) {
	base := string(mustRead(t, "fr-epci-visio"))
	text := strings.Replace(base, "vote_modes: [roll-call, electronic]", "vote_modes: [roll-call, secret]", 1)
	_, err := council.ParseProfile([]byte(text))
	if err == nil || !strings.Contains(err.Error(), "remote.vote_modes: a secret ballot cannot be held with remote members") {
		t.Fatalf("error = %v", err)
	}
	text = strings.Replace(base, "modes: [show-of-hands, roll-call, electronic, secret]", "modes: [show-of-hands, secret]", 1)
	_, err = council.ParseProfile([]byte(text))
	if err == nil || !strings.Contains(err.Error(), `remote.vote_modes: "roll-call" is not in votes.modes`) {
		t.Fatalf("error = %v", err)
	}
}
