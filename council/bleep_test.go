package council_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/council"
)

// at is a time of the sitting opened at 18:00:00 UTC (newSitting's clock).
func at(hms string) time.Time {
	t, err := time.Parse("15:04:05", hms)
	if err != nil {
		panic(err)
	}
	return time.Date(2025, 10, 14, t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}

type passage struct{ from, to string }

func TestBleepsFoldIntoTheRecordOnly(t *testing.T) {
	chair := council.Actor{Identity: "anne", Seat: 1, Role: council.RoleChair}
	cases := []struct {
		name   string
		marks  []passage
		want   []passage
		refuse error // the last mark is refused with this kind
	}{
		{"one passage", []passage{{"18:10:00", "18:10:07"}}, []passage{{"18:10:00", "18:10:07"}}, nil},
		{"two apart, in order", []passage{{"18:10:00", "18:10:05"}, {"18:20:00", "18:20:03"}},
			[]passage{{"18:10:00", "18:10:05"}, {"18:20:00", "18:20:03"}}, nil},
		{"the last seconds marked again", []passage{{"18:10:00", "18:10:10"}, {"18:10:05", "18:10:12"}},
			[]passage{{"18:10:00", "18:10:12"}}, nil},
		{"an earlier passage marked later", []passage{{"18:20:00", "18:20:03"}, {"18:10:00", "18:10:05"}},
			[]passage{{"18:10:00", "18:10:05"}, {"18:20:00", "18:20:03"}}, nil},
		{"one bridging two", []passage{{"18:10:00", "18:10:05"}, {"18:10:08", "18:10:09"}, {"18:10:04", "18:10:08"}},
			[]passage{{"18:10:00", "18:10:09"}}, nil},
		{"an end before the start", []passage{{"18:10:05", "18:10:00"}}, nil, council.ErrInvalid},
		{"no start", []passage{{"", "18:10:00"}}, nil, council.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSitting(t, "fr-commune", 5)
			s.arrive(1, 3)
			s.addItem("1", "")
			s.do(council.OpenItem{Header: s.chair(), ID: "1"})
			before := s.st.Quorum()
			applied := s.st.Applied()
			for i, m := range c.marks {
				var from time.Time
				if m.from != "" {
					from = at(m.from)
				}
				cmd := council.RecordBleep{Header: s.tick(chair), From: from, To: at(m.to)}
				if c.refuse != nil && i == len(c.marks)-1 {
					s.refused(cmd, c.refuse)
					continue
				}
				s.do(cmd)
			}
			var got []passage
			for _, b := range s.st.Bleeps() {
				got = append(got, passage{b.From.Format("15:04:05"), b.To.Format("15:04:05")})
				if b.By != chair {
					t.Errorf("passage marked by %+v, want the chair %+v", b.By, chair)
				}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("bleeps %v, want %v", got, c.want)
			}
			// Nothing of the deliberation moved: same quorum, the item still open, no vote.
			if q := s.st.Quorum(); q != before {
				t.Errorf("quorum %+v after bleeps, was %+v", q, before)
			}
			if it, _ := s.st.Item("1"); it.Status != council.StatusOpen {
				t.Errorf("item 1 is %s after bleeps", it.Status)
			}
			accepted := len(c.marks)
			if c.refuse != nil {
				accepted--
			}
			if s.st.Applied() != applied+accepted {
				t.Errorf("%d events applied, want %d", s.st.Applied()-applied, accepted)
			}
			// The journal replays to the same record.
			data, err := council.MarshalEvents(s.journal)
			if err != nil {
				t.Fatal(err)
			}
			events, err := council.UnmarshalEvents(data)
			if err != nil {
				t.Fatal(err)
			}
			replayed, err := council.Replay(s.p, council.Roster{}, events)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(replayed.Bleeps(), s.st.Bleeps()) {
				t.Errorf("replayed bleeps %+v, want %+v", replayed.Bleeps(), s.st.Bleeps())
			}
		})
	}
}

func TestBleepBeforeTheSessionIsRefused(t *testing.T) {
	st, err := council.NewState(loadProfile(t, "generic"), seats(3))
	if err != nil {
		t.Fatal(err)
	}
	h := council.Header{At: opening, By: council.Actor{Identity: "anne", Role: council.RoleChair}}
	if _, err := st.Execute(council.RecordBleep{Header: h, From: opening.Add(-time.Second), To: opening}); !errors.Is(err, council.ErrState) {
		t.Errorf("a bleep before the session opened: %v, want a refusal (ErrState)", err)
	}
	if err := st.Apply(council.ProgrammeBleeped{Header: h, From: opening.Add(-time.Second), To: opening}); err == nil {
		t.Error("a journal whose bleep comes before the session's opening was folded")
	}
}

func TestBleepsInTheMinutes(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	chair := council.Actor{Identity: "anne", Seat: 1, Role: council.RoleChair}
	s := newSitting(t, "generic", 3)
	s.do(council.RecordBleep{Header: s.tick(chair), From: at("18:01:02"), To: at("18:01:09")})
	s.do(council.RecordBleep{Header: s.tick(chair), From: at("18:02:30"), To: at("18:02:41")})
	m := council.DraftMinutes(s.st, paris) // 18:01 UTC in October is 20:01 in Paris

	cases := []struct {
		name   string
		labels *council.Labels
		html   bool
		want   []string
	}{
		{"markdown, French", nil, false, []string{
			"## Diffusion publique\n",
			"- Diffusion publique interrompue de 20:01:02 à 20:01:09 (à la demande de la présidence)\n",
			"- Diffusion publique interrompue de 20:02:30 à 20:02:41 (à la demande de la présidence)\n",
		}},
		{"html, French", nil, true, []string{
			"<h2>Diffusion publique</h2>",
			"<li>Diffusion publique interrompue de 20:01:02 à 20:01:09 (à la demande de la présidence)</li>",
		}},
		{"markdown, English", ptr(council.EnglishLabels()), false, []string{
			"## Public broadcast\n",
			"- Public broadcast interrupted from 20:01:02 to 20:01:09 (at the chair's request)\n",
		}},
		{"html, English", ptr(council.EnglishLabels()), true, []string{
			"<li>Public broadcast interrupted from 20:02:30 to 20:02:41 (at the chair&#39;s request)</li>",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkRendered(t, m, c.labels, c.html, c.want)
		})
	}

	// A sitting never cut says nothing about the broadcast.
	quiet := newSitting(t, "generic", 3)
	var out bytes.Buffer
	if err := council.DraftMinutes(quiet.st, paris).WriteMarkdown(&out, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "Diffusion publique") {
		t.Errorf("minutes of a sitting without bleeps mention the broadcast:\n%s", out.String())
	}
}

func ptr[T any](v T) *T { return &v }
