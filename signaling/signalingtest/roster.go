package signalingtest

import "strings"

// testRoster is a council of five, in the roster's CSV form: seat 1 chairs.
var testRoster = []string{
	"1,Anne Maire,Majorité,maire",
	"2,Bruno Adjoint,Majorité,adjoint",
	"3,Chloé Conseil,Opposition,conseillère",
	"4,David Elu,Majorité,conseiller",
	"5,Emma Vote,Opposition,conseillère",
}

// Roster is the CSV roster of the test council's first seats (1 to 5), as a clerk uploads it.
func Roster(seats int) string {
	return "seat,name,group,role\n" + strings.Join(testRoster[:seats], "\n") + "\n"
}

// SeatPresence is the presence of seat in a room's state as the API answers it, "" when the
// seat is not there.
func SeatPresence(state map[string]any, seat int) string {
	for _, s := range state["seats"].([]any) {
		m := s.(map[string]any)
		if int(m["seat"].(float64)) == seat {
			return m["presence"].(string)
		}
	}
	return ""
}
