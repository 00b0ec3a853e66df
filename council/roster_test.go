package council_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ingeco/hemicycle/council"
)

func TestParseRoster(t *testing.T) {
	csv := "\ufeffsiège;nom;groupe;fonction\n" +
		"1;Jeanne Martin;Majorité;maire\n" +
		"2;Paul Durand;Majorité;adjoint\n" +
		"\n" +
		"3;;;\n" + // vacant seat
		"4;\"Lefèvre; Anne\";Opposition;conseillère\n"
	r, err := council.ParseRoster(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Seats) != 4 || r.InOffice() != 3 {
		t.Fatalf("roster = %+v", r)
	}
	if s, _ := r.Seat(4); s.Name != "Lefèvre; Anne" || s.Group != "Opposition" || s.Role != "conseillère" {
		t.Fatalf("seat 4 = %+v", s)
	}
	if s, _ := r.Seat(3); s.InOffice() {
		t.Fatalf("seat 3 should be vacant: %+v", s)
	}
}

func TestParseRosterErrorsNameTheLine(t *testing.T) {
	cases := []struct {
		name, csv, want string
	}{
		{"duplicate seat", "seat,name,group,role\n1,A,G,r\n2,B,G,r\n1,C,G,r\n", `line 4: seat "1" appears twice (first on line 2)`},
		{"bad seat number", "seat,name\n1,A\nx2,B\n", `line 3, column 1: seat "x2" is not a positive whole number`},
		{"seat in second column", "name,seat\nA,1\nB,0\n", `line 3, column 2: seat "0" is not a positive whole number`},
		{"unknown column", "seat,name,adresse\n", `line 1, column 3: unknown column "adresse"`},
		{"missing name column", "seat,group\n1,G\n", `line 1: column "name" is missing`},
		{"field count", "seat,name,group\n1,A,G\n2,B\n", "line 3: 2 fields, the header has 3"},
		{"bad quoting", "seat,name\n1,A\n2,\"B\n", "line 3"},
		{"empty", "", "file is empty"},
		{"header only", "seat,name\n", "no seat after the header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := council.ParseRoster(strings.NewReader(c.csv))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// Every fault of the clerk's file is a RosterLineError worded in the clerk's language: the
// French words for a French clerk, whatever the file's fault.
func TestParseRosterErrorsInFrench(t *testing.T) {
	cases := []struct {
		name, csv string
		line      int
		fr        string
	}{
		{"duplicate seat", "siège;nom\n1;A\n1;C\n", 3, `ligne 3 : le siège "1" figure deux fois (déjà ligne 2)`},
		{"bad birth date", "siège;nom;né le\n1;A;31/02/1961\n", 2, `ligne 2, colonne 3 : la date de naissance "31/02/1961" n'est pas une date comme 27/03/1961 ou 1961-03-27`},
		{"unknown column", "siège;nom;adresse\n", 1, `ligne 1, colonne 3 : colonne "adresse" inconnue (colonnes possibles : siège, nom, groupe, fonction, date de naissance, courriel, téléphone)`},
		{"column twice", "siège;nom;Nom\n", 1, `ligne 1, colonne 3 : la colonne "Nom" figure deux fois`},
		{"missing seat column", "nom;groupe\nA;G\n", 1, `ligne 1 : il manque la colonne "siège" (l'en-tête doit nommer le siège et le nom`},
		{"misplaced quote", "siège;nom\n1;Jean \"Le Grand\" Petit\n", 2, "ligne 2, colonne 8 : guillemet mal placé"},
		{"field count", "siège;nom;groupe\n1;A\n", 2, "ligne 2 : 2 champs, l'en-tête en a 3"},
		{"not text", "si\xe8ge;nom\n", 0, "le fichier n'est pas du texte UTF-8 (enregistrez le tableur au format « CSV UTF-8 »)"},
		{"empty", "", 1, "le fichier est vide (il faut une ligne d'en-tête : siège, nom, groupe, fonction)"},
		{"header only", "siège;nom\n", 2, "aucun siège après la ligne d'en-tête"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := council.ParseMembers(strings.NewReader(c.csv))
			le, ok := errors.AsType[*council.RosterLineError](err)
			if !ok {
				t.Fatalf("error %v (%T), want a RosterLineError", err, err)
			}
			if got := le.In(council.FrenchLabels()); le.Line != c.line || !strings.HasPrefix(got, c.fr) {
				t.Fatalf("line %d, in French %q; want line %d, %q", le.Line, got, c.line, c.fr)
			}
			if en := le.Error(); en == le.In(council.FrenchLabels()) || en == "" {
				t.Fatalf("in English %q: the same words as in French", en)
			}
		})
	}
}

func TestVacantSeatIsNotInOffice(t *testing.T) {
	// CGCT L2121-17 counts members in office: a vacant seat lowers the basis.
	r := seats(33)
	r.Seats[32].Name = "" // seat 33 vacant
	s := newSittingWith(t, loadProfile(t, "fr-commune"), r, false)
	s.arrive(1, 17)
	if q := s.st.Quorum(); q.InOffice != 32 || q.Required != 17 || !q.Reached {
		t.Fatalf("quorum = %+v", q)
	}
	s.refused(council.RecordArrival{Header: s.clerk(), Seat: 33, Place: council.InChamber}, council.ErrUnknown)
}

// The eldest of candidates tied wins (CGCT L2121-21): the roster may carry birth dates, in the
// ISO form or the French one, which both read as the same date.
func TestRosterBirthDates(t *testing.T) {
	r, err := council.ParseRoster(strings.NewReader("siège;nom;date de naissance\n1;Jeanne Martin;27/03/1961\n2;Paul Durand;1975-11-02\n3;Anne Petit;\n"))
	if err != nil {
		t.Fatal(err)
	}
	for seat, want := range map[int]string{1: "1961-03-27", 2: "1975-11-02", 3: ""} {
		if s, _ := r.Seat(seat); s.Born != want {
			t.Fatalf("seat %d born %q, want %q", seat, s.Born, want)
		}
	}
	_, err = council.ParseRoster(strings.NewReader("seat,name,born\n1,A,1961-13-01\n"))
	if err == nil || !strings.Contains(err.Error(), `line 2, column 3: birth date "1961-13-01" is not a date`) {
		t.Fatalf("bad date: %v", err)
	}
}

// The clerk's file may carry contact details, which come back beside the seats only, and a
// bad line is worded in the clerk's language.
func TestParseMembersContactsAndLineErrorsInTwoLanguages(t *testing.T) {
	ms, err := council.ParseMembers(strings.NewReader("siège;nom;courriel;téléphone\n1;Ana Lévy;ana@example.org;+33 6 12 34 56 78\n2;;;\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Email != "ana@example.org" || ms[0].Phone != "+33 6 12 34 56 78" || ms[1].InOffice() {
		t.Fatalf("members %+v", ms)
	}
	_, err = council.ParseMembers(strings.NewReader("seat,name\n1,Ana\ntrois,Bob\n"))
	le, ok := errors.AsType[*council.RosterLineError](err)
	if !ok || le.Line != 3 || le.Column != 1 {
		t.Fatalf("error %v, want a RosterLineError on line 3, column 1", err)
	}
	if got := le.In(council.FrenchLabels()); got != `ligne 3, colonne 1 : le siège "trois" n'est pas un nombre entier positif` {
		t.Fatalf("in French: %s", got)
	}
	if got := le.Error(); got != `line 3, column 1: seat "trois" is not a positive whole number` {
		t.Fatalf("in English: %s", got)
	}
}

func TestRosterEdits(t *testing.T) {
	r, err := council.NewRoster([]council.Seat{{Number: 1, Name: "Anne", Role: "maire"}, {Number: 2, Name: "Bruno"}, {Number: 3, Name: "Chloé"}})
	if err != nil {
		t.Fatal(err)
	}
	resigned, before, err := r.Edit(council.RosterEdit{Change: council.Resignation, Seat: 2})
	if err != nil || before.Name != "Bruno" || resigned.InOffice() != 2 || r.InOffice() != 3 {
		t.Fatalf("resignation: %v, before %+v, %d in office (the original %d)", err, before, resigned.InOffice(), r.InOffice())
	}
	if _, _, err := resigned.Edit(council.RosterEdit{Change: council.Vacancy, Seat: 2}); err == nil {
		t.Error("a vacant seat fell vacant again")
	}
	replaced, before, err := resigned.Edit(council.RosterEdit{Change: council.Replacement, Seat: 2, Name: "Djamel", Group: "Majorité"})
	if s, _ := replaced.Seat(2); err != nil || before.InOffice() || s.Name != "Djamel" || s.Group != "Majorité" || replaced.InOffice() != 3 {
		t.Fatalf("replacement: %v, before %+v, seat %+v", err, before, s)
	}
	for _, bad := range []council.RosterEdit{
		{Change: council.Replacement, Seat: 2},              // nobody named
		{Change: council.Resignation, Seat: 9},              // no such seat
		{Change: council.Resignation, Seat: 1, Name: "Zoé"}, // a resignation names nobody
		{Change: "death", Seat: 1},                          // not a change we know
	} {
		if _, _, err := replaced.Edit(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
