package broadcast

import (
	"testing"
	"time"

	"github.com/ingeco/hemicycle/sfu"
)

func TestOnAirRule(t *testing.T) {
	t0 := time.Unix(1000, 0)
	cam := func() *sfu.PublishedTrack { return new(sfu.PublishedTrack) }
	chairCam, chairMic := cam(), cam()
	holderCam, holderMic := cam(), cam()
	interpCam := cam()
	loudMic, quietMic := cam(), cam()
	chair := Candidate{Chair: true, Joined: t0, Camera: chairCam, Microphone: chairMic, Level: 0.1}
	holder := Candidate{HasFloor: true, Joined: t0.Add(3 * time.Second), Camera: holderCam, Microphone: holderMic, Level: 0.2}
	interp := Candidate{Interpreter: true, Joined: t0.Add(time.Second), Camera: interpCam}
	loud := Candidate{Joined: t0.Add(2 * time.Second), Microphone: loudMic, Level: 0.9}
	quiet := Candidate{Joined: t0.Add(4 * time.Second), Microphone: quietMic, Level: 0.3}
	earlyOther := Candidate{Joined: t0.Add(-time.Second), Camera: cam()}

	for _, c := range []struct {
		name        string
		cands       []Candidate
		main, inter *sfu.PublishedTrack
		audio       []*sfu.PublishedTrack
	}{
		{"nobody: the slate, silence", nil, nil, nil, nil},
		{"the floor holder's camera, not the chair's; floor, chair, then loudest first",
			[]Candidate{quiet, chair, loud, holder, interp, earlyOther}, holderCam, interpCam,
			[]*sfu.PublishedTrack{holderMic, chairMic, loudMic, quietMic}},
		{"nobody holds the floor: the chair's camera", []Candidate{earlyOther, loud, chair}, chairCam, nil,
			[]*sfu.PublishedTrack{chairMic, loudMic}},
		{"a camera of no one in office is never on air alone", []Candidate{earlyOther}, nil, nil, nil},
		{"the floor holder without a camera: the chair's", []Candidate{{HasFloor: true, Microphone: holderMic}, chair},
			chairCam, nil, []*sfu.PublishedTrack{holderMic, chairMic}},
	} {
		sel := OnAir(c.cands)
		if sel.Main != c.main || sel.Interpreter != c.inter {
			t.Errorf("%s: main %p interpreter %p, want %p %p", c.name, sel.Main, sel.Interpreter, c.main, c.inter)
		}
		if len(sel.Audio) != len(c.audio) {
			t.Errorf("%s: %d microphones on air, want %d", c.name, len(sel.Audio), len(c.audio))
			continue
		}
		for i := range c.audio {
			if sel.Audio[i] != c.audio[i] {
				t.Errorf("%s: microphone %d is not the one expected", c.name, i)
			}
		}
	}
}
