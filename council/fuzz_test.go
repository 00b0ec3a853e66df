package council_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/council"
)

// Fuzz targets for what the council package reads from outside: the clerk's roster CSV and the
// journal's events. Seeds are a real roster and the events of a full session.

// FuzzParseMembers reads a roster file. A roster it accepts has distinct positive seat numbers,
// makes a Roster, and written back as CSV reads back the same; a file it refuses gets a
// *RosterLineError worded in English and in French.
func FuzzParseMembers(f *testing.F) {
	f.Add([]byte(clerkRoster))
	f.Add([]byte("\ufeffsiège;nom;groupe;fonction;né le;courriel;téléphone\n1;Jeanne Martin;Ensemble;présidente;05/03/1961;j.martin@example.org;+33 1 23 45 67 89\n2;\"Durand; Paul\";;;;;\n"))
	f.Add([]byte("seat,name,born\n1,\"Ana \"\"la\"\" Rousse\",1970-01-31\n\n3,Eve,\n"))
	f.Add([]byte("seat,name\n1,A\n1,B\n"))
	f.Add([]byte("seat,name\n0,A\n"))
	f.Add([]byte("seat,name\n1,\"A\n"))
	f.Add([]byte("name,seat,seat\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		members, err := council.ParseMembers(bytes.NewReader(data))
		if err != nil {
			var le *council.RosterLineError
			if !errors.As(err, &le) {
				t.Fatalf("refusal %T (%v) is not a *RosterLineError", err, err)
			}
			if le.In(council.EnglishLabels()) == "" || le.In(council.FrenchLabels()) == "" {
				t.Fatalf("refusal without words: %#v", le)
			}
			return
		}
		seen := map[int]bool{}
		seats := make([]council.Seat, len(members))
		for i, m := range members {
			if m.Number <= 0 || seen[m.Number] {
				t.Fatalf("seat number %d accepted (seen before: %v)", m.Number, seen[m.Number])
			}
			seen[m.Number] = true
			seats[i] = m.Seat
		}
		if _, err := council.NewRoster(seats); err != nil {
			t.Fatalf("an accepted roster does not make a Roster: %v", err)
		}
		var out bytes.Buffer
		w := csv.NewWriter(&out)
		_ = w.Write([]string{"seat", "name", "group", "role", "born", "email", "phone"})
		for _, m := range members {
			_ = w.Write([]string{strconv.Itoa(m.Number), m.Name, m.Group, m.Role, m.Born, m.Email, m.Phone})
		}
		w.Flush()
		again, err := council.ParseMembers(&out)
		if err != nil {
			t.Fatalf("the roster written back does not read: %v\n%s", err, out.Bytes())
		}
		if !reflect.DeepEqual(again, members) {
			t.Fatalf("the roster written back reads differently:\n%#v\n%#v", members, again)
		}
	})
}

// seedJournal is the events of a full session, as the journal holds them.
func seedJournal(f *testing.F) []council.Event {
	return fullSession(f).journal
}

// FuzzDecodeEvent decodes one journal entry's (type, data). An event it accepts encodes to the
// same type and decodes again to the same event.
func FuzzDecodeEvent(f *testing.F) {
	for _, e := range seedJournal(f) {
		typ, data, err := council.EncodeEvent(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(typ, []byte(data))
	}
	f.Add("ballot.cast", []byte(`{"at":"2026-03-05T18:45:00Z","vote":"1-1","seat":12,"choice":"for","extra":1}`))
	f.Add("nothing.happened", []byte(`{}`))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		e, err := council.DecodeEvent(typ, data)
		if err != nil {
			return
		}
		typ2, data2, err := council.EncodeEvent(e)
		if err != nil {
			t.Fatalf("decoded %s does not encode: %v", typ, err)
		}
		if typ2 != typ {
			t.Fatalf("decoded as %s, encodes as %s", typ, typ2)
		}
		back, err := council.DecodeEvent(typ2, data2)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v\n%s", typ, err, data2)
		}
		if !reflect.DeepEqual(back, e) {
			t.Fatalf("%s does not round-trip:\n%#v\n%#v", typ, e, back)
		}
	})
}

// FuzzReplay decodes a journal and folds it, event by event, under the profile it was recorded
// with. Nothing panics; an event that does not apply leaves the state (its view and its draft
// minutes) as it was; and a journal decodes to events that encode back to the same journal.
func FuzzReplay(f *testing.F) {
	journal := seedJournal(f)
	data, err := council.MarshalEvents(journal)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	half, err := council.MarshalEvents(journal[:len(journal)/2])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(half)
	p := loadProfile(f, "fr-epci-visio")
	f.Fuzz(func(t *testing.T, data []byte) {
		events, err := council.UnmarshalEvents(data)
		if err != nil {
			return
		}
		again, err := council.MarshalEvents(events)
		if err != nil {
			t.Fatalf("decoded events do not encode: %v", err)
		}
		back, err := council.UnmarshalEvents(again)
		if err != nil || !reflect.DeepEqual(back, events) {
			t.Fatalf("the journal does not round-trip (%v)", err)
		}
		st, err := council.NewState(p, council.Roster{})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
		view := func() []byte {
			b, err := json.Marshal(st.View(now))
			if err != nil {
				t.Fatalf("view does not encode: %v", err)
			}
			return b
		}
		for i, e := range events {
			before, minutes := view(), council.DraftMinutes(st, nil)
			if err := st.Apply(e); err != nil {
				if after := view(); !bytes.Equal(before, after) {
					t.Fatalf("event %d (%s) was refused (%v) but changed the state:\n%s\n%s", i+1, e.Type(), err, before, after)
				}
				if !reflect.DeepEqual(minutes, council.DraftMinutes(st, nil)) {
					t.Fatalf("event %d (%s) was refused (%v) but changed the minutes", i+1, e.Type(), err)
				}
			}
		}
	})
}
