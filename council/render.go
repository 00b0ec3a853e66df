package council

import (
	"cmp"
	"fmt"
	htmltemplate "html/template"
	"io"
	"strings"
	texttemplate "text/template"
	"time"
)

// Labels are the words the minutes are written with. FrenchLabels is the
// default; a caller may supply another language. Fields ending in F are
// fmt formats.
type Labels struct {
	Lang       string
	TimeLayout string
	Colon      string // " : " in French typography, ": " in English
	Months     [12]string
	Weekdays   [7]string // Sunday first, as time.Weekday

	Minutes, Body, Date, Location, Chair, Secretary, Opened, Closed, Profile string
	InOffice, SecondConvocation, None                                        string
	ChairTakenF                                                              string // name, time

	Attendance, Chamber, Remote, Represented, Absent string
	VerifiedF                                        string // time
	ProxyF                                           string // giver, holder
	ProxyItemF                                       string // item id
	ProxyEndedF                                      string // time
	ConnectionLost, Withdrew                         string

	Agenda, Item, Kind, InPersonOnly, Postponed, Quorum   string
	QuorumReachedF, QuorumNotReachedF, QuorumWaivedF      string // counted, what, required, basis, of
	Present, PresentOrRepresented, MembersInOffice, Seats string
	SecretBallot, SecretRequestedF                        string // requesters, present
	SecretPostponedF                                      string // remote member names

	Vote, Question, Mode                                    string
	ShowOfHands, RollCall, Electronic, Secret               string
	For, Against, Abstain, NotVoting, Blank, Cast, Required string
	Adopted, Rejected, CastingVote                          string
	ByProxyF                                                string // voter, holder
	Speaking, SpeechesF                                     string // count

	// Elections (CGCT L2121-21). RoundF heads a round (its number); its facts are the
	// candidates, the voters, the blank and the spoilt papers apart, the votes cast, the absolute
	// majority, and each candidate's votes (CandidateVotesF: count); a public round names the
	// papers (VotedForF: candidate). Its outcome: elected at the absolute majority
	// (ElectedAbsoluteF: name, votes, required, cast), at the relative majority
	// (ElectedRelativeF: name, votes), as the eldest of those tied (ElectedEldestF: name, votes,
	// the tied), nobody at the absolute majority (NoAbsoluteMajorityF: required), or a tie the
	// roster's birth dates cannot settle (TieUnsettledF: votes, the tied). Elected heads the
	// item's outcome.
	RoundF, Candidates, Voters, BlankPapers, SpoiltPapers, AbsoluteMajority, CandidateVotesF, VotedForF string
	ElectedAbsoluteF, ElectedRelativeF, ElectedEldestF, NoAbsoluteMajorityF, TieUnsettledF, Elected     string
	// PublicVote heads a public vote by name asked by members (PublicRequestedF: time, names,
	// count, present) or decided unanimously instead of a secret ballot (PublicDecidedF:
	// present, time).
	PublicVote, PublicRequestedF, PublicDecidedF string
	// Correction heads a ballot the clerk corrected (CorrectionF: as keyed, as corrected, time,
	// who, reason), each ballot written BallotF (member, choice) with its choice in words;
	// ChoiceCandidateF names an election paper's candidate; ClerkRole says who the clerk is.
	Correction, CorrectionF, BallotF, ClerkRole                                             string
	ChoiceFor, ChoiceAgainst, ChoiceAbstain, ChoiceNotVoting, ChoiceBlank, ChoiceCandidateF string
	// NonVoters heads the members present or represented who had not voted when the vote
	// closed; RecordedF the ballots of an electronic vote recorded for members in the chamber
	// (who recorded them), ChairRole saying who the chair is.
	NonVoters, RecordedF, ChairRole string

	// Broadcast heads the passages cut from the public broadcast; BleepF phrases one (from,
	// to, both in BleepTimeLayout: to the second, as a viewer would look for them).
	Broadcast, BleepF, BleepTimeLayout string
	// Incidents heads the sitting's suspensions, closed-door votes and closing for lack of a
	// quorum. SuspendedF: from, to; ClosedDoorAdoptedF: for, against, required, counted, from,
	// to; ClosedDoorRejectedF: for, against, required, counted, time; ClosedNoQuorumF: time,
	// quorum, date of the second convocation; QuorumLost and QuorumRegained label an item's
	// incident (QuorumIncidentF: time, quorum).
	Incidents, SuspendedF, ReasonF, ClosedDoorAdoptedF, ClosedDoorRejectedF, ClosedNoQuorumF string
	QuorumLost, QuorumRegained, QuorumIncidentF, Referred                                    string

	// The chapters of the session's recording, so that a viewer of the archive can jump to a
	// moment: the opening (session title), each item opened (number, title), each vote opened
	// (question), its result, the closing; a bleeped passage, and the chapter it interrupted
	// resumed after it (title), or ChapterResumed when none came before.
	ChapterOpenedF, ChapterItemF, ChapterVoteF string
	ChapterAdoptedF, ChapterRejectedF          string // for, against, abstentions
	ChapterClosed, ChapterBleep                string
	ChapterResumedF, ChapterResumed            string

	// The journal's seal at the end of the minutes: its name and number of entries, the last
	// entry's hash, its signature (key id) and the public key to check it with.
	Integrity, SealJournalF, SealHash, SealSignatureF, SealUnsigned, SealPublicKey string
	// A roster file's line errors, shown to the clerk who imported it: the line and column,
	// then the value; the field counts; the seat and the line it first appeared on.
	RosterSeatF, RosterFieldsF, RosterTwiceF string
	// The roster file's other faults: a birth date that is no date (line, column, value); a
	// header's unknown column or one named twice (column, header); a required column missing
	// (its name); a misplaced quote (line, column) or another fault of the CSV (line, column,
	// the reader's reason); a file not read (the reason), not text, empty, or with no seat.
	RosterBornF, RosterColumnUnknownF, RosterColumnTwiceF, RosterColumnMissingF, RosterQuoteF, RosterCSVF string
	RosterReadF, RosterNotText, RosterEmpty, RosterNoSeat                                                 string
	// ConvocationLateF warns that a convocation is late: the day it is (or would be) sent,
	// the clear days it leaves, the clear days required, the last day to send it.
	ConvocationLateF string
}

// LabelsFor gives the labels of a language by its code, as the minutes' ?lang= and --lang and
// the server's language setting take it; the error is for the caller to prefix with the
// option's name.
func LabelsFor(lang string) (Labels, error) {
	switch lang {
	case "fr":
		return FrenchLabels(), nil
	case "en":
		return EnglishLabels(), nil
	}
	return Labels{}, fmt.Errorf("%q: use fr or en", lang)
}

// kindName names a profile's item kind in the minutes' language; a kind it does not know keeps
// the profile's name.
func (l *Labels) kindName(kind string) string {
	if l.Lang != "fr" {
		return kind
	}
	switch kind {
	case "deliberation":
		return "délibération"
	case "budget-primitif":
		return "budget primitif"
	case "compte-administratif":
		return "compte administratif"
	case "election":
		return "élection"
	}
	return kind
}

// FrenchLabels writes the procès-verbal in French.
func FrenchLabels() Labels {
	return Labels{
		Lang: "fr", TimeLayout: "15 h 04", Colon: " : ",
		Months:   [12]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"},
		Weekdays: [7]string{"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"},
		Minutes:  "Procès-verbal", Body: "Assemblée", Date: "Date", Location: "Lieu", Chair: "Présidence",
		Secretary: "Secrétaire de séance", Opened: "Ouverture", Closed: "Clôture", Profile: "Règles appliquées",
		InOffice: "Membres en exercice", SecondConvocation: "Séance sur seconde convocation (quorum non requis)",
		None: "néant", ChairTakenF: "%s préside à partir de %s",
		Attendance: "Présences", Chamber: "Présents dans la salle", Remote: "Présents à distance",
		Represented: "Représentés", Absent: "Absents",
		VerifiedF: "identité vérifiée à %s", ProxyF: "%s a donné pouvoir à %s", ProxyItemF: "pour le point %s",
		ProxyEndedF: "fin à %s", ConnectionLost: "connexion perdue", Withdrew: "s'est retiré(e)",
		Agenda: "Ordre du jour", Item: "Point", Kind: "Nature", InPersonOnly: "vote en présentiel uniquement",
		Postponed: "Ajourné", Quorum: "Quorum",
		QuorumReachedF:    "atteint : %d %s, %d requis sur %d %s",
		QuorumNotReachedF: "non atteint : %d %s, %d requis sur %d %s",
		QuorumWaivedF:     "non requis (seconde convocation) : %d %s, %d requis sur %d %s",
		Present:           "présents", PresentOrRepresented: "présents ou représentés",
		MembersInOffice: "membres en exercice", Seats: "sièges",
		SecretBallot: "Scrutin secret", SecretRequestedF: "demandé par %d des %d membres présents",
		SecretPostponedF: "scrutin secret impossible en présence de membres à distance (%s) : point reporté à une séance tenue en présentiel",
		Vote:             "Vote", Question: "Question", Mode: "Mode de scrutin",
		ShowOfHands: "à main levée", RollCall: "par appel nominal", Electronic: "électronique", Secret: "au scrutin secret",
		For: "Pour", Against: "Contre", Abstain: "Abstentions", NotVoting: "Ne prennent pas part au vote",
		Blank: "Blancs ou nuls", Cast: "Suffrages exprimés", Required: "Majorité requise",
		Adopted: "Adopté", Rejected: "Rejeté", CastingVote: "voix prépondérante du président",
		ByProxyF: "%s (pouvoir à %s)", Speaking: "Temps de parole", SpeechesF: "%d intervention(s)",
		RoundF: "tour de scrutin n° %d", Candidates: "Candidats", Voters: "Votants", BlankPapers: "Bulletins blancs",
		SpoiltPapers: "Bulletins nuls", AbsoluteMajority: "Majorité absolue", CandidateVotesF: "%d voix", VotedForF: "Pour %s",
		ElectedAbsoluteF:    "%s est élu(e) à la majorité absolue : %d voix, %d requises sur %d suffrages exprimés",
		ElectedRelativeF:    "%s est élu(e) à la majorité relative (CGCT L2121-21) : %d voix",
		ElectedEldestF:      "%s est élu(e) au bénéfice de l'âge : %d voix chacun pour %s, l'élection est acquise au plus âgé (CGCT L2121-21)",
		NoAbsoluteMajorityF: "Aucun candidat n'obtient la majorité absolue (%d voix requises) : un nouveau tour est nécessaire",
		TieUnsettledF:       "Égalité de voix (%d chacun) entre %s : le plus âgé ne peut être désigné, une date de naissance manquant au tableau ou étant commune",
		Elected:             "Élu(e)",
		PublicVote:          "Scrutin public",
		PublicRequestedF:    "demandé à %s par %s, soit %d des %d membres présents (CGCT L2121-21) : chaque vote est inscrit au nom de son auteur",
		PublicDecidedF:      "le conseil a décidé à l'unanimité des %d membres présents, à %s, de ne pas procéder au scrutin secret (CGCT L2121-21)",
		Correction:          "Correction", CorrectionF: "bulletin saisi « %s » corrigé en « %s » à %s par %s ; motif : %s", BallotF: "%s : %s",
		ClerkRole: "secrétariat de séance", ChairRole: "présidence",
		NonVoters: "N'ont pas pris part au vote", RecordedF: "Bulletins enregistrés en salle par %s",
		ChoiceFor: "pour", ChoiceAgainst: "contre", ChoiceAbstain: "abstention", ChoiceNotVoting: "ne prend pas part au vote",
		ChoiceBlank: "bulletin blanc", ChoiceCandidateF: "vote pour %s",
		Broadcast: "Diffusion publique", BleepTimeLayout: "15:04:05",
		Incidents: "Incidents de séance", SuspendedF: "Séance suspendue de %s à %s", ReasonF: " (motif : %s)",
		ClosedDoorAdoptedF:  "Huis clos (CGCT L2121-18) voté par %d voix contre %d (%d requises sur %d membres présents ou représentés) : séance à huis clos de %s à %s",
		ClosedDoorRejectedF: "Huis clos (CGCT L2121-18) rejeté : %d voix pour, %d contre (%d requises sur %d membres présents ou représentés), à %s",
		ClosedNoQuorumF:     "Séance close faute de quorum à %s (%s) ; seconde convocation (CGCT L2121-17), sans condition de quorum, à partir du %s",
		QuorumLost:          "Quorum perdu", QuorumRegained: "Quorum retrouvé", QuorumIncidentF: "%s : %s",
		Referred:       "quorum non atteint : renvoyé à la seconde convocation (CGCT L2121-17)",
		BleepF:         "Diffusion publique interrompue de %s à %s (à la demande de la présidence)",
		ChapterOpenedF: "Ouverture de la séance %s", ChapterItemF: "Point %d : %s", ChapterVoteF: "Vote : %s",
		ChapterAdoptedF:  "Résultat : adopté (%d pour, %d contre, %d abstentions)",
		ChapterRejectedF: "Résultat : rejeté (%d pour, %d contre, %d abstentions)",
		ChapterClosed:    "Clôture de la séance", ChapterBleep: "Passage coupé (bip)",
		ChapterResumedF: "%s (suite)", ChapterResumed: "Suite",
		Integrity: "Intégrité du journal", SealJournalF: "%s, %d entrées", SealHash: "Empreinte SHA-256 de la dernière entrée",
		SealSignatureF: "Signature Ed25519 (clé %s)", SealUnsigned: "Signature : aucune, le journal n'est pas signé",
		SealPublicKey:        "Clé publique",
		RosterSeatF:          "ligne %d, colonne %d : le siège %q n'est pas un nombre entier positif",
		RosterFieldsF:        "ligne %d : %d champs, l'en-tête en a %d",
		RosterTwiceF:         "ligne %d : le siège %q figure deux fois (déjà ligne %d)",
		RosterBornF:          "ligne %d, colonne %d : la date de naissance %q n'est pas une date comme 27/03/1961 ou 1961-03-27",
		RosterColumnUnknownF: "ligne 1, colonne %d : colonne %q inconnue (colonnes possibles : siège, nom, groupe, fonction, date de naissance, courriel, téléphone)",
		RosterColumnTwiceF:   "ligne 1, colonne %d : la colonne %q figure deux fois",
		RosterColumnMissingF: "ligne 1 : il manque la colonne %q (l'en-tête doit nommer le siège et le nom ; groupe, fonction, date de naissance, courriel et téléphone sont facultatifs)",
		RosterQuoteF:         "ligne %d, colonne %d : guillemet mal placé (un champ qui contient un guillemet s'écrit entre guillemets, le guillemet doublé)",
		RosterCSVF:           "ligne %d, colonne %d : le fichier CSV est mal formé (%v)",
		RosterReadF:          "le fichier des membres n'a pu être lu : %v",
		RosterNotText:        "le fichier n'est pas du texte UTF-8 (enregistrez le tableur au format « CSV UTF-8 »)",
		RosterEmpty:          "le fichier est vide (il faut une ligne d'en-tête : siège, nom, groupe, fonction)",
		RosterNoSeat:         "aucun siège après la ligne d'en-tête",
		ConvocationLateF:     "convocation tardive : envoyée le %s, elle laisse %d jour(s) franc(s) avant la séance, il en faut %d (envoi au plus tard le %s)",
	}
}

// EnglishLabels writes the minutes in English.
func EnglishLabels() Labels {
	return Labels{
		Lang: "en", TimeLayout: "15:04", Colon: ": ",
		Months:   [12]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
		Weekdays: [7]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"},
		Minutes:  "Minutes", Body: "Body", Date: "Date", Location: "Place", Chair: "Chair",
		Secretary: "Secretary", Opened: "Opened", Closed: "Closed", Profile: "Rules applied",
		InOffice: "Members in office", SecondConvocation: "Second convocation (no quorum required)",
		None: "none", ChairTakenF: "%s in the chair from %s",
		Attendance: "Attendance", Chamber: "Present in the chamber", Remote: "Present remotely",
		Represented: "Represented", Absent: "Absent",
		VerifiedF: "identity verified at %s", ProxyF: "%s gave a proxy to %s", ProxyItemF: "for item %s",
		ProxyEndedF: "ended at %s", ConnectionLost: "connection lost", Withdrew: "withdrew",
		Agenda: "Agenda", Item: "Item", Kind: "Kind", InPersonOnly: "in-person vote only",
		Postponed: "Postponed", Quorum: "Quorum",
		QuorumReachedF:    "reached: %d %s, %d required of %d %s",
		QuorumNotReachedF: "not reached: %d %s, %d required of %d %s",
		QuorumWaivedF:     "not required (second convocation): %d %s, %d required of %d %s",
		Present:           "present", PresentOrRepresented: "present or represented",
		MembersInOffice: "members in office", Seats: "seats",
		SecretBallot: "Secret ballot", SecretRequestedF: "requested by %d of %d members present",
		SecretPostponedF: "no secret ballot while remote members take part (%s): item postponed to a session held in person",
		Vote:             "Vote", Question: "Question", Mode: "Mode",
		ShowOfHands: "show of hands", RollCall: "roll call", Electronic: "electronic", Secret: "secret ballot",
		For: "For", Against: "Against", Abstain: "Abstentions", NotVoting: "Not voting",
		Blank: "Blank or spoilt", Cast: "Votes cast", Required: "Needed to pass",
		Adopted: "Adopted", Rejected: "Rejected", CastingVote: "chair's casting vote",
		ByProxyF: "%s (proxy to %s)", Speaking: "Speaking time", SpeechesF: "%d speech(es)",
		RoundF: "round %d", Candidates: "Candidates", Voters: "Voters", BlankPapers: "Blank papers",
		SpoiltPapers: "Spoilt papers", AbsoluteMajority: "Absolute majority", CandidateVotesF: "%d vote(s)", VotedForF: "For %s",
		ElectedAbsoluteF:    "%s is elected by an absolute majority: %d votes, %d needed of %d cast",
		ElectedRelativeF:    "%s is elected by a relative majority (CGCT L2121-21): %d votes",
		ElectedEldestF:      "%s is elected as the eldest: %d votes each for %s, and a tie goes to the eldest (CGCT L2121-21)",
		NoAbsoluteMajorityF: "No candidate has the absolute majority (%d votes needed): a further round is needed",
		TieUnsettledF:       "A tie (%d votes each) between %s: the eldest cannot be named, a birth date being missing from the roster or shared",
		Elected:             "Elected",
		PublicVote:          "Public vote",
		PublicRequestedF:    "requested at %s by %s, %d of the %d members present (CGCT L2121-21): each vote is recorded under its voter's name",
		PublicDecidedF:      "the council decided unanimously, %d members present, at %s, not to vote by secret ballot (CGCT L2121-21)",
		Correction:          "Correction", CorrectionF: "ballot keyed “%s” corrected to “%s” at %s by %s; reason: %s", BallotF: "%s: %s",
		ClerkRole: "clerk", ChairRole: "chair",
		NonVoters: "Present, did not vote", RecordedF: "Ballots recorded in the chamber by %s",
		ChoiceFor: "for", ChoiceAgainst: "against", ChoiceAbstain: "abstention", ChoiceNotVoting: "not voting",
		ChoiceBlank: "blank paper", ChoiceCandidateF: "a vote for %s",
		Broadcast: "Public broadcast", BleepTimeLayout: "15:04:05",
		Incidents: "Incidents of the sitting", SuspendedF: "Sitting suspended from %s to %s", ReasonF: " (reason: %s)",
		ClosedDoorAdoptedF:  "Closed-door sitting (CGCT L2121-18) voted by %d to %d (%d required of %d members present or represented): held in private from %s to %s",
		ClosedDoorRejectedF: "Closed-door sitting (CGCT L2121-18) rejected: %d for, %d against (%d required of %d members present or represented), at %s",
		ClosedNoQuorumF:     "Sitting closed for lack of a quorum at %s (%s); second convocation (CGCT L2121-17), with no quorum required, from %s",
		QuorumLost:          "Quorum lost", QuorumRegained: "Quorum regained", QuorumIncidentF: "%s: %s",
		Referred:       ReferredForLackOfQuorum,
		BleepF:         "Public broadcast interrupted from %s to %s (at the chair's request)",
		ChapterOpenedF: "Opening of the session %s", ChapterItemF: "Item %d: %s", ChapterVoteF: "Vote: %s",
		ChapterAdoptedF:  "Result: adopted (%d for, %d against, %d abstentions)",
		ChapterRejectedF: "Result: rejected (%d for, %d against, %d abstentions)",
		ChapterClosed:    "Closing of the session", ChapterBleep: "Passage cut (bleep)",
		ChapterResumedF: "%s (continued)", ChapterResumed: "Continued",
		Integrity: "Journal integrity", SealJournalF: "%s, %d entries", SealHash: "SHA-256 hash of the last entry",
		SealSignatureF: "Ed25519 signature (key %s)", SealUnsigned: "Signature: none, the journal is not signed",
		SealPublicKey:        "Public key",
		RosterSeatF:          "line %d, column %d: seat %q is not a positive whole number",
		RosterFieldsF:        "line %d: %d fields, the header has %d",
		RosterTwiceF:         "line %d: seat %q appears twice (first on line %d)",
		RosterBornF:          "line %d, column %d: birth date %q is not a date like 1961-03-27 or 27/03/1961",
		RosterColumnUnknownF: "line 1, column %d: unknown column %q (expected seat, name, group, role, born, email, phone)",
		RosterColumnTwiceF:   "line 1, column %d: column %q appears twice",
		RosterColumnMissingF: "line 1: column %q is missing (header must name seat and name; group, role, born, email and phone are optional)",
		RosterQuoteF:         "line %d, column %d: misplaced quote (a field containing a quote is written between quotes, the quote doubled)",
		RosterCSVF:           "line %d, column %d: the CSV file is malformed (%v)",
		RosterReadF:          "the roster file could not be read: %v",
		RosterNotText:        "the file is not UTF-8 text (export the spreadsheet as CSV UTF-8)",
		RosterEmpty:          "the file is empty (expected a header row: seat, name, group, role)",
		RosterNoSeat:         "no seat after the header row",
		ConvocationLateF:     "late convocation: sent on %s, it leaves %d clear day(s) before the sitting, %d are required (send it by %s)",
	}
}

// doc is the minutes already phrased, shared by both renderers so that the
// Markdown and HTML say the same thing.
type doc struct {
	Lang      string
	Colon     string
	Title     string
	Facts     []pair
	Sections  []section
	Items     []itemDoc
	Agenda    string
	Speaking  string
	Speakers  []pair
	Broadcast *section // nil: the broadcast was never cut
	Incidents *section // nil: the sitting ran without suspension, closed doors or closing for lack of quorum
	Seal      *sealDoc // nil: no journal seal given
}

type sealDoc struct {
	Heading  string
	Journal  pair
	Codes    []pair // values printed as code: hash, signature, key
	Unsigned string // said instead of a signature when there is none
}

type pair struct{ Label, Value string }

type section struct {
	Heading string
	Lines   []string
}

type itemDoc struct {
	Heading string
	Facts   []pair
	Votes   []voteDoc
}

type voteDoc struct {
	Heading     string
	Facts       []pair
	Names       []pair // choice label, names
	Corrections []pair
	Result      string
}

func (l Labels) date(t time.Time) string {
	return fmt.Sprintf("%s %d %s %d", l.Weekdays[t.Weekday()], t.Day(), l.Months[t.Month()-1], t.Year())
}

func (l Labels) clock(t time.Time) string {
	if t.IsZero() {
		return "…"
	}
	return t.Format(l.TimeLayout)
}

func (l Labels) mode(m VoteMode) string {
	switch m {
	case ShowOfHands:
		return l.ShowOfHands
	case RollCall:
		return l.RollCall
	case Electronic:
		return l.Electronic
	case Secret:
		return l.Secret
	}
	return string(m)
}

func (l Labels) quorum(q Quorum) string {
	what := l.Present
	if q.Counts == CountPresentOrRepresented {
		what = l.PresentOrRepresented
	}
	of := l.MembersInOffice
	if q.Of == BasisSeats {
		of = l.Seats
	}
	f := l.QuorumReachedF
	switch {
	case q.Waived:
		f = l.QuorumWaivedF
	case !q.Reached:
		f = l.QuorumNotReachedF
	}
	return fmt.Sprintf(f, q.Counted, what, q.Required, q.Basis, of)
}

func (l Labels) periods(ps []Period) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		s := l.clock(p.From) + " – " + l.clock(p.To)
		var notes []string
		if !p.VerifiedAt.IsZero() {
			notes = append(notes, fmt.Sprintf(l.VerifiedF, l.clock(p.VerifiedAt)))
		}
		switch p.Reason {
		case ConnectionLost:
			notes = append(notes, l.ConnectionLost)
		case Withdrew:
			notes = append(notes, l.Withdrew)
		}
		if len(notes) > 0 {
			s += " (" + strings.Join(notes, ", ") + ")"
		}
		parts[i] = s
	}
	return strings.Join(parts, " ; ")
}

func duration(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d min %02d s", int(d.Minutes()), int(d.Seconds())%60)
}

func (m *Minutes) phrase(l Labels) doc {
	d := doc{Lang: l.Lang, Colon: l.Colon, Agenda: l.Agenda, Speaking: l.Speaking}
	count := func(label string, n int) string { return fmt.Sprintf("%s%s%d", label, l.Colon, n) }
	d.Title = l.Minutes + " — " + m.Body.Name
	if m.Title != "" {
		d.Title += " — " + m.Title
	}
	add := func(label, value string) { d.Facts = append(d.Facts, pair{label, value}) }
	add(l.Body, m.Body.Name)
	if !m.OpenedAt.IsZero() {
		add(l.Date, l.date(m.OpenedAt))
	}
	if m.Location != "" {
		add(l.Location, m.Location)
	}
	if m.Chair != nil {
		chair := m.Chair.Name
		for _, c := range m.ChairChanges {
			chair += " ; " + fmt.Sprintf(l.ChairTakenF, c.Member.Name, l.clock(c.At))
		}
		add(l.Chair, chair)
	}
	if m.Secretary != nil {
		add(l.Secretary, m.Secretary.Name)
	}
	add(l.Opened, l.clock(m.OpenedAt))
	add(l.Closed, l.clock(m.ClosedAt))
	add(l.InOffice, fmt.Sprint(m.InOffice))
	add(l.Profile, m.Profile)
	if m.Second {
		add(l.SecondConvocation, "✓")
	}

	attendees := func(heading string, as []Attendee) {
		s := section{Heading: fmt.Sprintf("%s (%d)", heading, len(as))}
		for _, a := range as {
			s.Lines = append(s.Lines, a.Name+" — "+l.periods(a.Periods))
		}
		d.Sections = append(d.Sections, s)
	}
	attendees(l.Chamber, m.Chamber)
	attendees(l.Remote, m.Remote)
	rep := section{Heading: fmt.Sprintf("%s (%d)", l.Represented, len(m.Represented))}
	for _, r := range m.Represented {
		line := fmt.Sprintf(l.ProxyF, r.Giver.Name, r.Holder.Name) + ", " + l.clock(r.From)
		if r.Item != "" {
			line += ", " + fmt.Sprintf(l.ProxyItemF, r.Item)
		}
		if !r.Until.IsZero() {
			line += ", " + fmt.Sprintf(l.ProxyEndedF, l.clock(r.Until))
		}
		rep.Lines = append(rep.Lines, line)
	}
	d.Sections = append(d.Sections, rep)
	abs := section{Heading: fmt.Sprintf("%s (%d)", l.Absent, len(m.Absent))}
	for _, a := range m.Absent {
		abs.Lines = append(abs.Lines, a.Name)
	}
	d.Sections = append(d.Sections, abs)
	for i := range d.Sections {
		if len(d.Sections[i].Lines) == 0 {
			d.Sections[i].Lines = []string{l.None}
		}
	}

	for _, it := range m.Items {
		id := itemDoc{Heading: fmt.Sprintf("%s %s — %s", l.Item, it.ID, it.Title)}
		f := func(label, value string) { id.Facts = append(id.Facts, pair{label, value}) }
		// An ordinary deliberation needs no word on its nature; other kinds are named in the
		// minutes' language (a kind the labels do not know keeps the profile's name).
		if it.Kind != "" && it.Kind != DefaultKind {
			kind := l.kindName(it.Kind)
			if it.InPersonOnly {
				kind += " (" + l.InPersonOnly + ")"
			}
			f(l.Kind, kind)
		}
		if !it.OpenedAt.IsZero() {
			f(l.Opened, l.clock(it.OpenedAt))
		}
		if it.Quorum != nil {
			f(l.Quorum, l.quorum(*it.Quorum))
		}
		for _, q := range it.QuorumIncidents {
			label := l.QuorumRegained
			if q.Lost {
				label = l.QuorumLost
			}
			f(label, fmt.Sprintf(l.QuorumIncidentF, l.clock(q.At), l.quorum(q.Quorum)))
		}
		secretPostponed := false
		if sb := it.SecretBallot; sb != nil {
			f(l.SecretBallot, fmt.Sprintf(l.SecretRequestedF, sb.Requesters, sb.Present))
			if sb.Outcome == SecretPostponed {
				secretPostponed = true
				names := make([]string, len(it.RemoteAtSecretRequest))
				for i, r := range it.RemoteAtSecretRequest {
					names[i] = r.Name
				}
				f(l.Postponed, fmt.Sprintf(l.SecretPostponedF, strings.Join(names, ", ")))
			}
		}
		if pv := it.PublicVote; pv != nil {
			f(l.PublicVote, fmt.Sprintf(l.PublicRequestedF, l.clock(pv.At), names(pv.Requesters), len(pv.Requesters), pv.Present))
		}
		if d := it.PublicDecided; d != nil {
			f(l.PublicVote, fmt.Sprintf(l.PublicDecidedF, d.Present, l.clock(d.At)))
		}
		if it.Status == StatusPostponed && !secretPostponed {
			reason := it.PostponeReason
			if reason == ReferredForLackOfQuorum {
				reason = l.Referred
			}
			f(l.Postponed, reason)
		}
		if !it.ClosedAt.IsZero() {
			f(l.Closed, l.clock(it.ClosedAt))
		}
		if it.Elected != nil {
			f(l.Elected, it.Elected.Name)
		}
		for _, v := range it.Votes {
			vd := voteDoc{Heading: l.Vote + " " + v.ID}
			if v.Round > 0 {
				vd.Heading += " — " + fmt.Sprintf(l.RoundF, v.Round)
			}
			vf := func(label, value string) { vd.Facts = append(vd.Facts, pair{label, value}) }
			if v.Question != "" {
				vf(l.Question, v.Question)
			}
			vf(l.Mode, l.mode(v.Mode))
			vf(l.Opened, l.clock(v.OpenedAt))
			vf(l.Quorum, l.quorum(v.Quorum))
			vf(l.Closed, l.clock(v.ClosedAt))
			if len(v.Candidates) > 0 {
				vf(l.Candidates, names(v.Candidates))
			}
			if e := v.Election; e != nil {
				vf(l.Voters, fmt.Sprint(e.Voters))
				vf(l.BlankPapers, fmt.Sprint(e.Blank))
				vf(l.SpoiltPapers, fmt.Sprint(e.Spoilt))
				vf(l.Cast, fmt.Sprint(e.Cast))
				if e.Required > 0 {
					vf(l.AbsoluteMajority, fmt.Sprint(e.Required))
				}
				for _, c := range e.Votes {
					vf(c.Name, fmt.Sprintf(l.CandidateVotesF, c.Votes))
				}
			}
			voters := func(label string, vs []Voter) {
				if len(vs) == 0 {
					return
				}
				vd.Names = append(vd.Names, pair{fmt.Sprintf("%s (%d)", label, len(vs)), l.voterNames(vs)})
			}
			voters(l.For, v.For)
			voters(l.Against, v.Against)
			voters(l.Abstain, v.Abstain)
			for _, c := range v.ForCandidates {
				voters(fmt.Sprintf(l.VotedForF, c.Candidate.Name), c.Voters)
			}
			voters(l.BlankPapers, v.Blank)
			voters(l.NotVoting, v.NotVoting)
			if len(v.NonVoters) > 0 {
				// Labels made before non-voters were listed lack these words: French fills in.
				vd.Names = append(vd.Names, pair{fmt.Sprintf("%s (%d)", cmp.Or(l.NonVoters, FrenchLabels().NonVoters), len(v.NonVoters)), names(v.NonVoters)})
			}
			for _, r := range v.Recorded {
				vd.Names = append(vd.Names, pair{fmt.Sprintf(cmp.Or(l.RecordedF, FrenchLabels().RecordedF), l.who(r.By, r.Member)), l.voterNames(r.Voters)})
			}
			for _, c := range v.Corrections {
				vd.Corrections = append(vd.Corrections, pair{l.Correction, l.correction(c)})
			}
			if e := v.Election; e != nil {
				vd.Result = l.electionOutcome(*e)
			} else if r := v.Result; r != nil {
				verdict := l.Rejected
				if r.Adopted {
					verdict = l.Adopted
				}
				if r.CastingVote {
					verdict += " (" + l.CastingVote + ")"
				}
				counts := []string{count(l.For, r.For), count(l.Against, r.Against)}
				if v.Mode == Secret {
					counts = append(counts, count(l.Blank, r.Blank))
				} else {
					counts = append(counts, count(l.Abstain, r.Abstain), count(l.NotVoting, r.NotVoting))
				}
				counts = append(counts, count(l.Cast, r.Cast), count(l.Required, r.Required))
				vd.Result = verdict + " — " + strings.Join(counts, ", ")
			}
			id.Votes = append(id.Votes, vd)
		}
		d.Items = append(d.Items, id)
	}
	for _, s := range m.Speaking {
		d.Speakers = append(d.Speakers, pair{s.Member.Name, fmt.Sprintf(l.SpeechesF, s.Speeches) + ", " + duration(s.Total)})
	}
	if len(m.Bleeps) > 0 {
		// Labels made before bleeps were recorded lack these words: French fills in.
		fr := FrenchLabels()
		heading, f, layout := cmp.Or(l.Broadcast, fr.Broadcast), cmp.Or(l.BleepF, fr.BleepF), cmp.Or(l.BleepTimeLayout, fr.BleepTimeLayout)
		d.Broadcast = &section{Heading: heading}
		for _, b := range m.Bleeps {
			d.Broadcast.Lines = append(d.Broadcast.Lines, fmt.Sprintf(f, b.From.Format(layout), b.To.Format(layout)))
		}
	}
	d.Incidents = l.incidents(m)
	if m.Seal != nil {
		d.Seal = m.Seal.phrase(l)
	}
	return d
}

func (s *JournalSeal) phrase(l Labels) *sealDoc {
	// Labels made before seals were printed lack these words: French fills in.
	fr := FrenchLabels()
	d := &sealDoc{Heading: cmp.Or(l.Integrity, fr.Integrity),
		Journal: pair{"Journal", fmt.Sprintf(cmp.Or(l.SealJournalF, fr.SealJournalF), s.Journal, s.Entries)}}
	d.Codes = append(d.Codes, pair{cmp.Or(l.SealHash, fr.SealHash), s.Hash})
	if s.Signature == "" {
		d.Unsigned = cmp.Or(l.SealUnsigned, fr.SealUnsigned)
		return d
	}
	d.Codes = append(d.Codes, pair{fmt.Sprintf(cmp.Or(l.SealSignatureF, fr.SealSignatureF), s.KeyID), s.Signature})
	if s.PublicKey != "" {
		d.Codes = append(d.Codes, pair{cmp.Or(l.SealPublicKey, fr.SealPublicKey), s.PublicKey})
	}
	return d
}

// names lists members by name: "Anne Maire, Bruno Adjoint".
func names(ms []MemberRef) string {
	ns := make([]string, len(ms))
	for i, m := range ms {
		ns[i] = m.Name
	}
	return strings.Join(ns, ", ")
}

// electionOutcome says whom a round elected and by which rule of CGCT L2121-21, or why it
// elected nobody.
func (l Labels) electionOutcome(e RoundMinutes) string {
	top := 0
	if len(e.Votes) > 0 {
		top = e.Votes[0].Votes
	}
	switch {
	case e.Elected != nil && e.ByAge:
		return fmt.Sprintf(l.ElectedEldestF, e.Elected.Name, top, names(e.Tied))
	case e.Elected != nil && e.Required > 0:
		return fmt.Sprintf(l.ElectedAbsoluteF, e.Elected.Name, top, e.Required, e.Cast)
	case e.Elected != nil:
		return fmt.Sprintf(l.ElectedRelativeF, e.Elected.Name, top)
	case len(e.Tied) > 0:
		return fmt.Sprintf(l.TieUnsettledF, top, names(e.Tied))
	}
	return fmt.Sprintf(l.NoAbsoluteMajorityF, e.Required)
}

// correction phrases a corrected ballot: both values, when, who and why.
func (l Labels) correction(c CorrectionMinutes) string {
	return fmt.Sprintf(l.CorrectionF, l.ballot(c.From), l.ballot(c.To), l.clock(c.At), l.who(c.By, nil), c.Reason)
}

// voterNames lists ballots by their members' names, a proxy ballot with its holder's.
func (l Labels) voterNames(vs []Voter) string {
	ns := make([]string, len(vs))
	for i, x := range vs {
		ns[i] = x.Name
		if x.By != nil {
			ns[i] = fmt.Sprintf(l.ByProxyF, x.Name, x.By.Name)
		}
	}
	return strings.Join(ns, ", ")
}

// who names the person who recorded something: the member's name when they hold a seat, else
// the identity, with the clerk's or the chair's role.
func (l Labels) who(a Actor, m *MemberRef) string {
	name := a.Identity
	if m != nil && m.Name != "" {
		name = m.Name
	}
	switch a.Role {
	case RoleClerk:
		return strings.TrimSpace(name + " (" + l.ClerkRole + ")")
	case RoleChair:
		return strings.TrimSpace(name + " (" + cmp.Or(l.ChairRole, FrenchLabels().ChairRole) + ")")
	}
	return name
}

func (l Labels) ballot(b BallotMinutes) string {
	var choice string
	switch b.Choice {
	case For:
		choice = l.ChoiceFor
	case Against:
		choice = l.ChoiceAgainst
	case Abstain:
		choice = l.ChoiceAbstain
	case NotVoting:
		choice = l.ChoiceNotVoting
	case BlankPaper:
		choice = l.ChoiceBlank
	case ForCandidate:
		if b.Candidate != nil {
			choice = fmt.Sprintf(l.ChoiceCandidateF, b.Candidate.Name)
		}
	}
	return fmt.Sprintf(l.BallotF, b.Member.Name, choice)
}

// incidents is the section of the sitting's suspensions, closed-door votes and closing for
// lack of a quorum, nil when there were none.
func (l Labels) incidents(m *Minutes) *section {
	var lines []string
	for _, p := range m.Suspensions {
		line := fmt.Sprintf(l.SuspendedF, l.clock(p.From), l.clock(p.To))
		if p.Reason != "" {
			line += fmt.Sprintf(l.ReasonF, p.Reason)
		}
		lines = append(lines, line)
	}
	for _, c := range m.ClosedDoors {
		if c.Adopted {
			lines = append(lines, fmt.Sprintf(l.ClosedDoorAdoptedF, c.For, c.Against, c.Required, c.Counted, l.clock(c.From), l.clock(c.To)))
		} else {
			lines = append(lines, fmt.Sprintf(l.ClosedDoorRejectedF, c.For, c.Against, c.Required, c.Counted, l.clock(c.From)))
		}
	}
	if m.ClosedFor == ClosedNoQuorum && m.ClosingQuorum != nil {
		lines = append(lines, fmt.Sprintf(l.ClosedNoQuorumF, l.clock(m.ClosedAt), l.quorum(*m.ClosingQuorum), l.date(m.SecondConvocationFrom)))
	}
	if len(lines) == 0 {
		return nil
	}
	return &section{Heading: l.Incidents, Lines: lines}
}

// mdEscape keeps names and titles from being read as Markdown syntax or
// raw HTML, while leaving ordinary punctuation (Jean-Pierre, 18 h 02) as
// it is.
func mdEscape(s string) string {
	s = strings.Join(strings.Fields(s), " ") // a newline would end the list item
	var b strings.Builder
	for i, r := range s {
		if strings.ContainsRune("\\`*_[]<>|~&", r) || (i == 0 && strings.ContainsRune("#+-=>", r)) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	out := b.String()
	// "1. Budget" at the start would turn the line into a numbered list.
	if n := len(out) - len(strings.TrimLeft(out, "0123456789")); n > 0 && n < len(out) && (out[n] == '.' || out[n] == ')') {
		out = out[:n] + "\\" + out[n:]
	}
	return out
}

const markdownMinutes = `# {{md .Title}}
{{range .Facts}}
- **{{md .Label}}**{{$.Colon}}{{md .Value}}{{end}}
{{range .Sections}}
## {{md .Heading}}
{{range .Lines}}
- {{md .}}{{end}}
{{end}}
## {{md .Agenda}}
{{range .Items}}
### {{md .Heading}}
{{range .Facts}}
- **{{md .Label}}**{{$.Colon}}{{md .Value}}{{end}}
{{range .Votes}}
#### {{md .Heading}}
{{range .Facts}}
- **{{md .Label}}**{{$.Colon}}{{md .Value}}{{end}}
{{range .Names}}
- **{{md .Label}}**{{$.Colon}}{{md .Value}}{{end}}{{range .Corrections}}
- **{{md .Label}}**{{$.Colon}}{{md .Value}}{{end}}
{{if .Result}}
**{{md .Result}}**
{{end}}{{end}}{{end}}{{with .Incidents}}
## {{md .Heading}}
{{range .Lines}}
- {{md .}}{{end}}
{{end}}{{with .Broadcast}}
## {{md .Heading}}
{{range .Lines}}
- {{md .}}{{end}}
{{end}}{{if .Speakers}}
## {{md .Speaking}}
{{range .Speakers}}
- {{md .Label}}{{$.Colon}}{{md .Value}}{{end}}
{{end}}{{with .Seal}}
## {{md .Heading}}

- **{{md .Journal.Label}}**{{$.Colon}}{{md .Journal.Value}}{{range .Codes}}
- **{{md .Label}}**{{$.Colon}}` + "`{{.Value}}`" + `{{end}}{{with .Unsigned}}
- {{md .}}{{end}}
{{end}}`

const htmlMinutes = `<!DOCTYPE html>
<html lang="{{.Lang}}">
<head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body>
<h1>{{.Title}}</h1>
<dl>{{range .Facts}}<dt>{{.Label}}</dt><dd>{{.Value}}</dd>{{end}}</dl>
{{range .Sections}}<h2>{{.Heading}}</h2>
<ul>{{range .Lines}}<li>{{.}}</li>{{end}}</ul>
{{end}}<h2>{{.Agenda}}</h2>
{{range .Items}}<section>
<h3>{{.Heading}}</h3>
<dl>{{range .Facts}}<dt>{{.Label}}</dt><dd>{{.Value}}</dd>{{end}}</dl>
{{range .Votes}}<h4>{{.Heading}}</h4>
<dl>{{range .Facts}}<dt>{{.Label}}</dt><dd>{{.Value}}</dd>{{end}}</dl>
<dl>{{range .Names}}<dt>{{.Label}}</dt><dd>{{.Value}}</dd>{{end}}</dl>
{{if .Corrections}}<dl>{{range .Corrections}}<dt>{{.Label}}</dt><dd>{{.Value}}</dd>{{end}}</dl>
{{end}}{{if .Result}}<p><strong>{{.Result}}</strong></p>{{end}}
{{end}}</section>
{{end}}{{with .Incidents}}<h2>{{.Heading}}</h2>
<ul>{{range .Lines}}<li>{{.}}</li>{{end}}</ul>
{{end}}{{with .Broadcast}}<h2>{{.Heading}}</h2>
<ul>{{range .Lines}}<li>{{.}}</li>{{end}}</ul>
{{end}}{{if .Speakers}}<h2>{{.Speaking}}</h2>
<ul>{{range .Speakers}}<li>{{.Label}}{{$.Colon}}{{.Value}}</li>{{end}}</ul>
{{end}}{{with .Seal}}<h2>{{.Heading}}</h2>
<dl><dt>{{.Journal.Label}}</dt><dd>{{.Journal.Value}}</dd>{{range .Codes}}<dt>{{.Label}}</dt><dd><code>{{.Value}}</code></dd>{{end}}</dl>
{{with .Unsigned}}<p>{{.}}</p>
{{end}}{{end}}</body>
</html>
`

// WriteMarkdown renders the minutes as Markdown; nil labels mean French.
func (m *Minutes) WriteMarkdown(w io.Writer, l *Labels) error {
	t, err := texttemplate.New("minutes.md").Funcs(texttemplate.FuncMap{"md": mdEscape}).Parse(markdownMinutes)
	if err != nil {
		return fmt.Errorf("minutes markdown template: %w", err)
	}
	if err := t.Execute(w, m.phrase(labelsOrFrench(l))); err != nil {
		return fmt.Errorf("render minutes as markdown: %w", err)
	}
	return nil
}

// WriteHTML renders the minutes as a standalone HTML page, every value
// escaped; nil labels mean French.
func (m *Minutes) WriteHTML(w io.Writer, l *Labels) error {
	t, err := htmltemplate.New("minutes.html").Parse(htmlMinutes)
	if err != nil {
		return fmt.Errorf("minutes html template: %w", err)
	}
	if err := t.Execute(w, m.phrase(labelsOrFrench(l))); err != nil {
		return fmt.Errorf("render minutes as html: %w", err)
	}
	return nil
}

func labelsOrFrench(l *Labels) Labels {
	if l == nil {
		return FrenchLabels()
	}
	return *l
}
