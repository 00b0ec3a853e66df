package council

import "fmt"

// RosterChange is what happened to a seat between two sittings.
type RosterChange string

const (
	// Resignation: the member leaves (L2121-4), the seat is vacant until filled.
	Resignation RosterChange = "resignation"
	// Vacancy: the seat falls vacant for another reason (death, loss of eligibility).
	Vacancy RosterChange = "vacancy"
	// Replacement: a member takes the seat (the next on the list, L270 of the electoral code);
	// whoever held it leaves.
	Replacement RosterChange = "replacement"
)

// RosterEdit is one change to a body's roster, as the clerk records it.
type RosterEdit struct {
	Change RosterChange `json:"change"`
	Seat   int          `json:"seat"`
	// The new member, for a replacement.
	Name  string `json:"name,omitempty"`
	Group string `json:"group,omitempty"`
	Role  string `json:"role,omitempty"`
}

// Edit returns the roster with e applied and the seat as it was before; r is unchanged.
func (r Roster) Edit(e RosterEdit) (Roster, Seat, error) {
	i := -1
	for j, s := range r.Seats {
		if s.Number == e.Seat {
			i = j
		}
	}
	if i < 0 {
		return r, Seat{}, fmt.Errorf("seat %d is not in the roster", e.Seat)
	}
	before := r.Seats[i]
	after := Seat{Number: e.Seat}
	switch e.Change {
	case Resignation, Vacancy:
		if !before.InOffice() {
			return r, before, fmt.Errorf("seat %d is already vacant", e.Seat)
		}
		if e.Name != "" {
			return r, before, fmt.Errorf("a %s names no new member (record a replacement after it)", e.Change)
		}
	case Replacement:
		if e.Name == "" {
			return r, before, fmt.Errorf("a replacement names the member who takes seat %d", e.Seat)
		}
		after.Name, after.Group, after.Role = e.Name, e.Group, e.Role
	default:
		return r, before, fmt.Errorf("change %q: use resignation, vacancy or replacement", e.Change)
	}
	out := Roster{Seats: append([]Seat(nil), r.Seats...)}
	out.Seats[i] = after
	return out, before, nil
}
