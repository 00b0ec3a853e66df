package council

import "time"

// ConvocationRule is how long before a sitting its convocation must be sent, in clear days
// (jours francs): neither the day it is sent nor the day of the sitting counts.
type ConvocationRule struct {
	// ClearDays is the ordinary delay (CGCT L2121-11: three clear days in communes under
	// 3,500 inhabitants).
	ClearDays int `yaml:"clear_days" json:"clearDays"`
	// FromPopulation and ClearDaysFrom: from that many inhabitants the delay is ClearDaysFrom
	// (L2121-12: five clear days from 3,500). Zero when the delay does not depend on it.
	FromPopulation int `yaml:"from_population" json:"fromPopulation,omitempty"`
	ClearDaysFrom  int `yaml:"clear_days_from" json:"clearDaysFrom,omitempty"`
	// EmergencyClearDays is the shortest delay the mayor may set in an emergency
	// (L2121-11 al. 2 and L2121-12 al. 3: never under one clear day).
	EmergencyClearDays int `yaml:"emergency_clear_days" json:"emergencyClearDays"`
}

// ConvocationCheck is the verdict on a convocation's date.
type ConvocationCheck struct {
	Required int `json:"requiredClearDays"`
	Clear    int `json:"clearDays"` // clear days between sending and the sitting
	// Deadline is the last day (midnight starting it, in the body's zone) the convocation
	// may be sent on.
	Deadline time.Time `json:"deadline"`
	Late     bool      `json:"late"`
}

// CheckConvocation counts the clear days between sent and the sitting's start, both as
// calendar days in the body's zone loc, and compares them with the rule for a body of
// population inhabitants; emergency applies the shortened delay.
func CheckConvocation(rule ConvocationRule, population int, emergency bool, sent, sitting time.Time, loc *time.Location) ConvocationCheck {
	req := rule.ClearDays
	if rule.FromPopulation > 0 && population >= rule.FromPopulation {
		req = rule.ClearDaysFrom
	}
	if emergency {
		req = rule.EmergencyClearDays
	}
	day := func(t time.Time) time.Time {
		y, m, d := t.In(loc).Date()
		return time.Date(y, m, d, 0, 0, 0, 0, loc)
	}
	sittingDay := day(sitting)
	// Days strictly between the two dates; AddDate keeps this right across DST changes.
	clear := 0
	for d := day(sent).AddDate(0, 0, 1); d.Before(sittingDay); d = d.AddDate(0, 0, 1) {
		clear++
	}
	deadline := sittingDay.AddDate(0, 0, -req-1)
	return ConvocationCheck{Required: req, Clear: clear, Deadline: deadline, Late: clear < req}
}
