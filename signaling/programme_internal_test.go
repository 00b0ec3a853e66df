package signaling

import (
	"testing"
	"time"

	"github.com/ingeco/hemicycle/council"
)

func TestChaptersFromTheState(t *testing.T) {
	at := time.Date(2024, 1, 31, 18, 0, 0, 0, time.UTC)
	v := &council.View{
		Session: council.Session{Sitting: council.Sitting{Title: "Séance du 31 janvier"}, OpenedAt: at},
		Items: []council.Item{
			{ID: "1", Title: "Budget", OpenedAt: at.Add(time.Minute)},
			{ID: "2", Title: "Eau"},
		},
		Votes: []council.Vote{{ID: "v1", Item: "1", OpenedAt: at.Add(2 * time.Minute), ClosedAt: at.Add(3 * time.Minute),
			Result: &council.Result{For: 12, Against: 3, Abstain: 1, Adopted: true}}},
	}
	got := chaptersOf(v, council.FrenchLabels())
	want := []string{
		"Ouverture de la séance Séance du 31 janvier",
		"Point 1 : Budget",
		"Vote : Budget",
		"Résultat : adopté (12 pour, 3 contre, 1 abstentions)",
	}
	if len(got) != len(want) {
		t.Fatalf("chapters %+v", got)
	}
	for i := range want {
		if got[i].Title != want[i] {
			t.Errorf("chapter %d is %q, want %q", i, got[i].Title, want[i])
		}
	}
}
