package signaling_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// refusedInBoth asserts a refusal whose reason reads in English to a client asking for it, and
// in French to a French console and to a client naming no language.
func refusedInBoth(t *testing.T, ts *signalingtest.Server, method, path, token string, body any, status int, en, fr string) {
	t.Helper()
	wantRefused(t, ts, method, path, token, body, status, en)
	for _, lang := range []string{"fr-FR,fr;q=0.9,en;q=0.8", ""} {
		got, raw := ts.CallIn(t, lang, method, path, token, body)
		if msg, _ := signalingtest.Object(raw)["error"].(string); got != status || !strings.Contains(msg, fr) {
			t.Fatalf("%s %s with Accept-Language %q: %d %q, want %d saying %q", method, path, lang, got, msg, status, fr)
		}
	}
}

// A whole sitting's incidents through the API, as a clerk and a chair run them: a public vote
// asked by a quarter of the members with a ballot keyed wrongly and corrected, a suspension, a
// closed-door passage, an election in three rounds settled by age (CGCT L2121-21), and the
// sitting closed when the quorum is lost (L2121-17).
func TestSittingWithAnElectionAndIncidentsThroughTheAPI(t *testing.T) {
	ts, _ := startCouncilServer(t)
	const room = "incidents"
	api := "/api/rooms/" + room
	mayor := ts.Token(t, room, "anne", auth.RoleChair, 1)
	clerk := ts.Token(t, room, "greffe", auth.RoleClerk, 0)
	member := ts.Token(t, room, "chloe", auth.RoleMember, 3)
	roster := "seat,name,group,role,born\n" +
		"1,Anne Maire,Majorité,maire,1960-02-01\n" +
		"2,Bruno Adjoint,Majorité,adjoint,1975-06-12\n" +
		"3,Chloé Conseil,Opposition,conseillère,12/09/1949\n" +
		"4,David Elu,Majorité,conseiller,\n" +
		"5,Emma Vote,Opposition,conseillère,\n"
	opening := map[string]any{
		"body":  map[string]string{"name": "Conseil municipal de Test", "kind": "commune", "profile": "fr-commune"},
		"title": "Séance du 7 décembre", "chair": 1, "secretary": 2, "rosterCsv": strings.Replace(roster, "12/09/1949", "31/09/1949", 1),
	}
	// A birth date that is no date stops the opening, worded for the clerk (the eldest could
	// not be named on a tie otherwise).
	refusedInBoth(t, ts, "POST", api+"/session", clerk, opening, 400,
		`rosterCsv: line 4, column 5: birth date "31/09/1949" is not a date`, `rosterCsv: ligne 4, colonne 5 : la date de naissance "31/09/1949" n'est pas une date`)
	opening["rosterCsv"] = roster
	must(t, ts, "POST", api+"/session", clerk, opening)
	for seat := 1; seat <= 5; seat++ {
		must(t, ts, "POST", api+"/attendance/arrival", clerk, map[string]any{"seat": seat, "place": "chamber"})
	}

	// L2121-21 al. 1: seats 4 and 5 (a quarter of 5 present) ask for a public vote by name.
	must(t, ts, "POST", api+"/items", clerk, map[string]any{"id": "1", "title": "Tarifs de la cantine"})
	must(t, ts, "POST", api+"/items/1/open", mayor, nil)
	refusedInBoth(t, ts, "POST", api+"/items/1/public-vote", mayor, map[string]any{"requesters": []int{4}}, 400,
		"a public vote needs 2 of the 5 members present", "le scrutin public doit être demandé par 2 des 5 membres présents")
	wantRefused(t, ts, "POST", api+"/items/1/public-vote", member, map[string]any{"requesters": []int{4, 5}}, 403, "seat 1 presides now")
	must(t, ts, "POST", api+"/items/1/public-vote", mayor, map[string]any{"requesters": []int{4, 5}})
	refusedInBoth(t, ts, "POST", api+"/votes", mayor, map[string]any{"id": "1-1", "item": "1", "mode": "show-of-hands"}, 409,
		"vote by roll call or electronically", "votez par appel nominal ou électroniquement")
	must(t, ts, "POST", api+"/votes", mayor, map[string]any{"id": "1-1", "item": "1", "mode": "roll-call"})
	for seat, choice := range map[int]string{1: "for", 2: "for", 3: "against", 4: "for", 5: "abstain"} {
		must(t, ts, "POST", api+"/votes/1-1/ballots", clerk, map[string]any{"seat": seat, "choice": choice})
	}
	// Seat 2 answered against: the clerk corrects it, with the reason; the chair cannot.
	correction := map[string]any{"seat": 2, "choice": "against", "reason": "réponse mal saisie"}
	wantRefused(t, ts, "POST", api+"/votes/1-1/corrections", mayor, correction, 403, "your token's role is chair")
	refusedInBoth(t, ts, "POST", api+"/votes/1-1/corrections", clerk, map[string]any{"seat": 2, "choice": "against"}, 400,
		"a correction needs its reason", "une correction doit être motivée")
	must(t, ts, "POST", api+"/votes/1-1/corrections", clerk, correction)
	state := must(t, ts, "POST", api+"/votes/1-1/close", mayor, nil)
	vote := state["votes"].([]any)[0].(map[string]any)
	if r := vote["result"].(map[string]any); r["for"].(float64) != 2 || r["against"].(float64) != 2 {
		t.Fatalf("result %v, want 2 for and 2 against after the correction", r)
	}
	fix := vote["corrections"].([]any)[0].(map[string]any)
	if fix["from"].(map[string]any)["choice"] != "for" || fix["to"].(map[string]any)["choice"] != "against" || fix["reason"] != "réponse mal saisie" {
		t.Fatalf("correction %v, want for → against with the reason", fix)
	}
	must(t, ts, "POST", api+"/items/1/close", mayor, nil)

	// Suspension: nothing is opened until the sitting resumes.
	must(t, ts, "POST", api+"/items", clerk, map[string]any{"id": "2", "title": "Élection du délégué", "kind": "election"})
	state = must(t, ts, "POST", api+"/session/suspend", mayor, map[string]any{"reason": "interruption de séance"})
	if state["session"].(map[string]any)["suspended"] != true {
		t.Fatalf("session %v, want suspended", state["session"])
	}
	refusedInBoth(t, ts, "POST", api+"/items/2/open", mayor, nil, 409, "the sitting is suspended", "la séance est suspendue")
	must(t, ts, "POST", api+"/session/resume", mayor, nil)

	// L2121-18: three members ask to sit in private; 4 of 5 present decide it.
	wantRefused(t, ts, "POST", api+"/closed-door", member, map[string]any{"requesters": []int{2, 3, 4}, "for": 4, "against": 1}, 403, "seat 1 presides now")
	state = must(t, ts, "POST", api+"/closed-door", mayor, map[string]any{"requesters": []int{2, 3, 4}, "for": 4, "against": 1})
	sess := state["session"].(map[string]any)
	if sess["closedDoor"] != true || sess["closedDoors"].([]any)[0].(map[string]any)["required"].(float64) != 3 {
		t.Fatalf("session %v, want a closed door decided with 3 votes required", sess)
	}
	state = must(t, ts, "POST", api+"/closed-door/end", mayor, nil)
	if state["session"].(map[string]any)["closedDoor"] == true {
		t.Fatal("the sitting is still closed to the public after its end")
	}

	// L2121-21 al. 3: an election in three rounds; seats 2 and 3 tie, the eldest (3) is elected.
	must(t, ts, "POST", api+"/items/2/open", mayor, nil)
	must(t, ts, "POST", api+"/items/2/candidates", clerk, map[string]any{"seat": 2})
	must(t, ts, "POST", api+"/items/2/candidates", clerk, map[string]any{"seat": 3})
	refusedInBoth(t, ts, "POST", api+"/items/2/public-vote/unanimous", mayor, nil, 409,
		"requires a secret ballot", "impose le scrutin secret")
	refusedInBoth(t, ts, "POST", api+"/votes", mayor, map[string]any{"id": "2-1", "item": "2", "mode": "roll-call"}, 409,
		"must be voted by secret ballot", "doit être voté au scrutin secret")
	for i, papers := range []map[string]any{
		{"voters": 5, "blank": 1, "candidates": []map[string]int{{"seat": 2, "votes": 2}, {"seat": 3, "votes": 2}}},
		{"voters": 5, "spoilt": 1, "candidates": []map[string]int{{"seat": 2, "votes": 2}, {"seat": 3, "votes": 2}}},
		{"voters": 5, "blank": 1, "candidates": []map[string]int{{"seat": 2, "votes": 2}, {"seat": 3, "votes": 2}}},
	} {
		id := "2-" + string(rune('1'+i))
		must(t, ts, "POST", api+"/votes", mayor, map[string]any{"id": id, "item": "2", "mode": "secret"})
		must(t, ts, "POST", api+"/votes/"+id+"/tally", clerk, papers)
		state = must(t, ts, "POST", api+"/votes/"+id+"/close", mayor, nil)
	}
	votes := state["votes"].([]any)
	last := votes[len(votes)-1].(map[string]any)["election"].(map[string]any)
	if last["round"].(float64) != 3 || last["elected"].(float64) != 3 || last["byAge"] != true || last["cast"].(float64) != 4 || last["voters"].(float64) != 5 {
		t.Fatalf("round 3 %v, want seat 3 elected as the eldest, 5 voters and 4 votes cast", last)
	}
	if first := votes[1].(map[string]any)["election"].(map[string]any); first["required"].(float64) != 3 || first["elected"] != nil {
		t.Fatalf("round 1 %v, want nobody elected at 3 required", first)
	}
	must(t, ts, "POST", api+"/items/2/close", mayor, nil)

	// L2121-17: three members leave during item 3; the loss is recorded, and the sitting closes.
	must(t, ts, "POST", api+"/items", clerk, map[string]any{"id": "3", "title": "Subventions"})
	must(t, ts, "POST", api+"/items/3/open", mayor, nil)
	refusedInBoth(t, ts, "POST", api+"/session/close-no-quorum", mayor, nil, 409, "the quorum is reached", "le quorum est atteint")
	for _, seat := range []int{3, 4, 5} {
		must(t, ts, "POST", api+"/attendance/departure", clerk, map[string]any{"seat": seat})
	}
	state = must(t, ts, "POST", api+"/session/close-no-quorum", mayor, nil)
	sess = state["session"].(map[string]any)
	if sess["closedFor"] != "no-quorum" || sess["secondConvocationFrom"] == nil || sess["closingQuorum"].(map[string]any)["counted"].(float64) != 2 {
		t.Fatalf("session %v, want closed for no quorum, 2 present, with a second convocation date", sess)
	}
	items := state["items"].([]any)
	lost := items[2].(map[string]any)["quorumIncidents"].([]any)[0].(map[string]any)
	if lost["lost"] != true || lost["quorum"].(map[string]any)["counted"].(float64) != 2 {
		t.Fatalf("item 3 incident %v, want the quorum lost at 2 present", lost)
	}

	// The procès-verbal, as the clerk downloads it, says all of it in French: who asked for the
	// public vote and how each member voted, the correction with both values, who made it and
	// why, and each round of the election with its figures and the rule that elected.
	status, raw := ts.Call(t, "GET", api+"/minutes", clerk, nil)
	md := string(raw)
	if status != 200 {
		t.Fatalf("minutes: %d %s", status, md)
	}
	for _, want := range []string{
		"- **Scrutin public** : demandé à ",
		" par David Elu, Emma Vote, soit 2 des 5 membres présents (CGCT L2121-21) : chaque vote est inscrit au nom de son auteur\n",
		"- **Pour (2)** : Anne Maire, David Elu\n- **Contre (2)** : Bruno Adjoint, Chloé Conseil\n- **Abstentions (1)** : Emma Vote\n",
		"- **Correction** : bulletin saisi « Bruno Adjoint : pour » corrigé en « Bruno Adjoint : contre » à ",
		" par greffe (secrétariat de séance) ; motif : réponse mal saisie\n",
		"#### Vote 2-1 — tour de scrutin n° 1\n",
		"- **Votants** : 5\n- **Bulletins blancs** : 1\n- **Bulletins nuls** : 0\n- **Suffrages exprimés** : 4\n- **Majorité absolue** : 3\n- **Bruno Adjoint** : 2 voix\n- **Chloé Conseil** : 2 voix\n",
		"**Aucun candidat n'obtient la majorité absolue (3 voix requises) : un nouveau tour est nécessaire**\n",
		"- **Bulletins blancs** : 0\n- **Bulletins nuls** : 1\n",
		"#### Vote 2-3 — tour de scrutin n° 3\n",
		"**Chloé Conseil est élu(e) au bénéfice de l'âge : 2 voix chacun pour Bruno Adjoint, Chloé Conseil, l'élection est acquise au plus âgé (CGCT L2121-21)**\n",
		"- **Élu(e)** : Chloé Conseil\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the minutes lack %q:\n%s", want, md)
		}
	}

	// Nothing is deleted: the journal holds the ballot as keyed and its correction.
	status, raw = ts.Call(t, "GET", api+"/journal", clerk, nil)
	if status != 200 || !bytes.Contains(raw, []byte(`"ballot.corrected"`)) || bytes.Count(raw, []byte(`"ballot.cast"`)) != 5 {
		t.Fatalf("journal (%d) lacks the keyed ballots or their correction", status)
	}
}
