package council_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/council"
)

// A roll call in a 163-seat council (Paris), every member voting, then the
// result: the cost of Decide+Apply per ballot and of a full View.
func BenchmarkRollCall163(b *testing.B) {
	p, err := council.ParseProfile(mustReadB(b, "fr-epci-visio"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		st, _ := council.NewState(p, seats(163))
		at := opening
		h := func(seat int) council.Header {
			at = at.Add(time.Second)
			return council.Header{At: at, By: council.Actor{Identity: fmt.Sprint(seat), Seat: seat, Role: council.RoleMember}}
		}
		run := func(c council.Command) {
			if _, err := st.Execute(c); err != nil {
				b.Fatal(err)
			}
		}
		run(council.OpenSession{Header: h(1), Sitting: council.Sitting{Body: council.Body{Name: "B", Profile: p.ID}, Chair: 1}})
		for i := 1; i <= 163; i++ {
			run(council.RecordArrival{Header: h(i), Seat: i, Place: council.InChamber})
		}
		run(council.AddItem{Header: h(1), ID: "1", Title: "T"})
		run(council.OpenItem{Header: h(1), ID: "1"})
		run(council.OpenVote{Header: h(1), ID: "v", Item: "1", Mode: council.RollCall})
		for i := 1; i <= 163; i++ {
			run(council.CastBallot{Header: h(i), Vote: "v", Seat: i, Choice: council.For})
		}
		run(council.CloseVote{Header: h(1), Vote: "v"})
	}
}

func BenchmarkView163(b *testing.B) {
	p, err := council.ParseProfile(mustReadB(b, "fr-epci-visio"))
	if err != nil {
		b.Fatal(err)
	}
	st, _ := council.NewState(p, seats(163))
	at := opening
	if _, err := st.Execute(council.OpenSession{Header: council.Header{At: at}, Sitting: council.Sitting{Body: council.Body{Name: "B", Profile: p.ID}, Chair: 1}}); err != nil {
		b.Fatal(err)
	}
	for i := 1; i <= 150; i++ {
		if _, err := st.Execute(council.RecordArrival{Header: council.Header{At: at}, Seat: i, Place: council.InChamber}); err != nil {
			b.Fatal(err)
		}
	}
	for i := 151; i <= 163; i++ {
		if _, err := st.Execute(council.GiveProxy{Header: council.Header{At: at}, Giver: i, Holder: i - 150}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = st.View(at)
	}
}

func mustReadB(b *testing.B, id string) []byte {
	data, err := readProfile(id)
	if err != nil {
		b.Fatal(err)
	}
	return data
}
