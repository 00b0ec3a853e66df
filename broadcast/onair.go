package broadcast

import (
	"slices"
	"time"

	"github.com/ingeco/hemicycle/sfu"
)

// Candidate is a participant who could be on air, as the room sees them now.
type Candidate struct {
	HasFloor    bool // holds the floor in the sitting
	Chair       bool // presides (by role or by seat)
	Interpreter bool // the sign-language interpreter
	Joined      time.Time
	// Camera and Microphone are the participant's open, flowing tracks; nil when none.
	Camera, Microphone *sfu.PublishedTrack
	Level              float64 // the microphone's current level, 0 to 1
}

// OnAir is the rule of the public programme: the floor holder's camera, else the chair's; the
// interpreter's camera pinned; the open microphones, floor holder, chair and interpreter first,
// the others loudest first. Among equals the earliest to join comes first.
func OnAir(cands []Candidate) Selection {
	cands = slices.Clone(cands)
	slices.SortStableFunc(cands, func(a, b Candidate) int { return a.Joined.Compare(b.Joined) })
	camOf := func(match func(Candidate) bool) *sfu.PublishedTrack {
		for _, c := range cands {
			if match(c) && c.Camera != nil {
				return c.Camera
			}
		}
		return nil
	}
	var sel Selection
	sel.Main = camOf(func(c Candidate) bool { return c.HasFloor })
	if sel.Main == nil {
		sel.Main = camOf(func(c Candidate) bool { return c.Chair })
	}
	sel.Interpreter = camOf(func(c Candidate) bool { return c.Interpreter })

	rank := func(c Candidate) int {
		switch {
		case c.HasFloor:
			return 0
		case c.Chair:
			return 1
		case c.Interpreter:
			return 2
		}
		return 3
	}
	mics := slices.DeleteFunc(cands, func(c Candidate) bool { return c.Microphone == nil })
	slices.SortStableFunc(mics, func(a, b Candidate) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		switch {
		case a.Level > b.Level:
			return -1
		case a.Level < b.Level:
			return 1
		}
		return 0
	})
	for _, c := range mics {
		sel.Audio = append(sel.Audio, c.Microphone)
	}
	return sel
}
