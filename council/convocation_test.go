package council

import (
	"testing"
	"time"
)

// Cases from CGCT L2121-11 (communes under 3,500 inhabitants: "trois jours francs au moins
// avant celui de la réunion"; in an emergency "sans pouvoir être toutefois inférieur à un
// jour franc") and L2121-12 (from 3,500: "cinq jours francs"). Clear days exclude the day
// of sending and the day of the sitting.
func TestCheckConvocation(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	rule := ConvocationRule{ClearDays: 3, FromPopulation: 3500, ClearDaysFrom: 5, EmergencyClearDays: 1}
	sitting := time.Date(2026, 12, 15, 18, 30, 0, 0, paris) // a Tuesday
	sent := func(day, hour int) time.Time { return time.Date(2026, 12, day, hour, 0, 0, 0, paris) }
	cases := []struct {
		name       string
		population int
		emergency  bool
		sent       time.Time
		clear      int
		late       bool
		deadline   int // day of December
	}{
		{"small commune, sent on the 11th: 12, 13, 14 are clear", 800, false, sent(11, 23), 3, false, 11},
		{"small commune, sent on the 12th at dawn: two clear days", 800, false, sent(12, 6), 2, true, 11},
		{"3,500 inhabitants is above: five clear days, the 9th is in time", 3500, false, sent(9, 12), 5, false, 9},
		{"3,499 inhabitants is under: three clear days suffice", 3499, false, sent(11, 12), 3, false, 11},
		{"large commune, sent on the 11th: late", 12000, false, sent(11, 12), 3, true, 9},
		{"emergency: one clear day (sent on the 13th)", 12000, true, sent(13, 12), 1, false, 13},
		{"emergency: never less than one clear day (sent the day before)", 800, true, sent(14, 12), 0, true, 13},
		{"sent on the day of the sitting", 800, true, sent(15, 8), 0, true, 13},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := CheckConvocation(rule, c.population, c.emergency, c.sent, sitting, paris)
			if got.Clear != c.clear || got.Late != c.late {
				t.Fatalf("clear %d late %v, want clear %d late %v (%+v)", got.Clear, got.Late, c.clear, c.late, got)
			}
			if y, m, d := got.Deadline.Date(); y != 2026 || m != 12 || d != c.deadline {
				t.Fatalf("deadline %s, want 2026-12-%02d", got.Deadline, c.deadline)
			}
		})
	}
	// Across the end of summer time a day is 25 hours: days are counted as dates, not hours.
	autumn := CheckConvocation(rule, 800, false, time.Date(2026, 10, 22, 23, 59, 0, 0, paris), time.Date(2026, 10, 26, 0, 30, 0, 0, paris), paris)
	if autumn.Clear != 3 || autumn.Late {
		t.Fatalf("over the clock change: %+v, want three clear days, in time", autumn)
	}
}
