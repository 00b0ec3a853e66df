package council

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Body is the deliberative assembly: a municipal council, a community
// council, a board. Profile names its legal profile.
type Body struct {
	Name    string `json:"name"`
	Kind    string `json:"kind,omitempty"`
	Profile string `json:"profile"`
}

// Seat is one place in the body. An empty Name is a vacant seat: it counts
// among the seats but not among the members in office.
type Seat struct {
	Number int    `json:"seat"`
	Name   string `json:"name,omitempty"`
	Group  string `json:"group,omitempty"`
	// Role is the member's function in the body as the clerk writes it
	// (maire, adjoint, conseiller…), not an application permission.
	Role string `json:"role,omitempty"`
	// Born is the member's birth date (2006-01-02), which names the eldest of candidates tied
	// in an election (CGCT L2121-21); optional.
	Born string `json:"born,omitempty"`
}

// InOffice reports whether a member holds the seat.
func (s Seat) InOffice() bool { return s.Name != "" }

// Roster lists the seats in the clerk's order, which in a French commune is
// the ordre du tableau; minutes keep that order.
type Roster struct {
	Seats []Seat `json:"seats"`
}

// NewRoster checks that seat numbers are positive and unique.
func NewRoster(seats []Seat) (Roster, error) {
	seen := make(map[int]bool, len(seats))
	for i, s := range seats {
		if s.Number <= 0 {
			return Roster{}, fmt.Errorf("roster entry %d: seat %d is not a positive number", i+1, s.Number)
		}
		if seen[s.Number] {
			return Roster{}, fmt.Errorf("roster entry %d: seat %d appears twice", i+1, s.Number)
		}
		seen[s.Number] = true
	}
	return Roster{Seats: append([]Seat(nil), seats...)}, nil
}

// Seat returns the seat with that number.
func (r Roster) Seat(n int) (Seat, bool) {
	for _, s := range r.Seats {
		if s.Number == n {
			return s, true
		}
	}
	return Seat{}, false
}

// InOffice is the number of members in office.
func (r Roster) InOffice() int {
	n := 0
	for _, s := range r.Seats {
		if s.InOffice() {
			n++
		}
	}
	return n
}

func (r Roster) equal(o Roster) bool {
	if len(r.Seats) != len(o.Seats) {
		return false
	}
	for i := range r.Seats {
		if r.Seats[i] != o.Seats[i] {
			return false
		}
	}
	return true
}

// Member is a seat with its holder's contact details, which the body keeps apart from the
// roster (and from every journal) so that they can be forgotten when the member leaves.
type Member struct {
	Seat
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// RosterLineError is a roster file that cannot be read, at a line (Line 0 when the file as a
// whole is at fault: not text, unreadable); In words it in a language, Error in English.
type RosterLineError struct {
	Line, Column int
	Value        string
	Fields, Want int // for a line with the wrong number of fields
	First        int // for a seat seen twice: the line it first appeared on
	format       func(Labels) string
}

func (e *RosterLineError) Error() string { return e.In(EnglishLabels()) }

// In words the error with l.
func (e *RosterLineError) In(l Labels) string { return e.format(l) }

// rosterError is a RosterLineError at line and column worded by format.
func rosterError(line, column int, value string, format func(Labels) string) *RosterLineError {
	return &RosterLineError{Line: line, Column: column, Value: value, format: format}
}

// ParseRoster reads the clerk's CSV file: a header row naming the columns
// seat, name, group, role (any order; French headers siège, nom, groupe,
// fonction are accepted too), then one row per seat. Commas or semicolons
// (French spreadsheets) separate fields. Errors name the line and column.
func ParseRoster(r io.Reader) (Roster, error) {
	members, err := ParseMembers(r)
	if err != nil {
		return Roster{}, err
	}
	seats := make([]Seat, len(members))
	for i, m := range members {
		seats[i] = m.Seat
	}
	return Roster{Seats: seats}, nil
}

// ParseMembers is ParseRoster with the optional columns email (courriel) and phone
// (téléphone), for the body's own records.
func ParseMembers(r io.Reader) ([]Member, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, rosterError(0, 0, "", func(l Labels) string { return fmt.Sprintf(l.RosterReadF, err) })
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // spreadsheet UTF-8 mark
	if !utf8.Valid(data) {
		return nil, rosterError(0, 0, "", func(l Labels) string { return l.RosterNotText })
	}
	cr := csv.NewReader(bytes.NewReader(data))
	firstLine, _, _ := bytes.Cut(data, []byte("\n"))
	if bytes.Count(firstLine, []byte(";")) > bytes.Count(firstLine, []byte(",")) {
		cr.Comma = ';'
	}
	cr.FieldsPerRecord = -1 // checked below, to give a clearer message
	cr.TrimLeadingSpace = true

	header, err := cr.Read()
	if err == io.EOF {
		return nil, rosterError(1, 0, "", func(l Labels) string { return l.RosterEmpty })
	}
	if err != nil {
		return nil, csvError(err)
	}
	col := map[string]int{}
	for i, h := range header {
		name, c := headerName(h), i+1
		if name == "" {
			return nil, rosterError(1, c, h, func(l Labels) string { return fmt.Sprintf(l.RosterColumnUnknownF, c, h) })
		}
		if _, dup := col[name]; dup {
			return nil, rosterError(1, c, h, func(l Labels) string { return fmt.Sprintf(l.RosterColumnTwiceF, c, h) })
		}
		col[name] = i
	}
	for _, req := range []string{"seat", "name"} {
		if _, ok := col[req]; !ok {
			return nil, rosterError(1, 0, req, func(l Labels) string { return fmt.Sprintf(l.RosterColumnMissingF, l.columnName(req)) })
		}
	}

	var seats []Member
	firstSeen := map[int]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // blank line left by a spreadsheet
		}
		if len(rec) != len(header) {
			n, want := len(rec), len(header)
			return nil, &RosterLineError{Line: line, Fields: n, Want: want, format: func(l Labels) string {
				return fmt.Sprintf(l.RosterFieldsF, line, n, want)
			}}
		}
		field := func(name string) string {
			if i, ok := col[name]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		raw := field("seat")
		n, err := strconv.Atoi(raw)
		if err != nil || n <= 0 {
			c := col["seat"] + 1
			return nil, &RosterLineError{Line: line, Column: c, Value: raw, format: func(l Labels) string {
				return fmt.Sprintf(l.RosterSeatF, line, c, raw)
			}}
		}
		if first, dup := firstSeen[n]; dup {
			return nil, &RosterLineError{Line: line, Value: raw, First: first, format: func(l Labels) string {
				return fmt.Sprintf(l.RosterTwiceF, line, raw, first)
			}}
		}
		firstSeen[n] = line
		raw = field("born")
		born, ok := birthDate(raw)
		if !ok {
			c := col["born"] + 1
			return nil, rosterError(line, c, raw, func(l Labels) string { return fmt.Sprintf(l.RosterBornF, line, c, raw) })
		}
		seats = append(seats, Member{Seat: Seat{Number: n, Name: field("name"), Group: field("group"), Role: field("role"), Born: born},
			Email: field("email"), Phone: field("phone")})
	}
	if len(seats) == 0 {
		return nil, rosterError(2, 0, "", func(l Labels) string { return l.RosterNoSeat })
	}
	return seats, nil
}

func headerName(h string) string {
	switch strings.ToLower(strings.TrimSpace(h)) {
	case "seat", "siège", "siege":
		return "seat"
	case "name", "nom":
		return "name"
	case "group", "groupe":
		return "group"
	case "role", "rôle", "fonction":
		return "role"
	case "born", "birth date", "date of birth", "né le", "née le", "date de naissance", "naissance":
		return "born"
	case "email", "e-mail", "courriel":
		return "email"
	case "phone", "téléphone", "telephone":
		return "phone"
	}
	return ""
}

// birthDate reads a roster's birth date, 2006-01-02 or the French 02/01/2006, as 2006-01-02
// ("" when the cell is empty); false when it is no such date.
func birthDate(s string) (string, bool) {
	if s == "" {
		return "", true
	}
	for _, layout := range []string{"2006-01-02", "02/01/2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Format("2006-01-02"), true
		}
	}
	return "", false
}

// csvError words a line the CSV reader refused: a misplaced quote in the clerk's words, any
// other fault as the reader gives it.
func csvError(err error) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return rosterError(0, 0, "", func(l Labels) string { return fmt.Sprintf(l.RosterReadF, err) })
	}
	line, c := pe.Line, pe.Column
	if errors.Is(pe.Err, csv.ErrBareQuote) || errors.Is(pe.Err, csv.ErrQuote) {
		return rosterError(line, c, "", func(l Labels) string { return fmt.Sprintf(l.RosterQuoteF, line, c) })
	}
	return rosterError(line, c, "", func(l Labels) string { return fmt.Sprintf(l.RosterCSVF, line, c, pe.Err) })
}

// columnName names a required column of the roster in l's language.
func (l Labels) columnName(name string) string {
	if l.Lang == "fr" {
		switch name {
		case "seat":
			return "siège"
		case "name":
			return "nom"
		}
	}
	return name
}
