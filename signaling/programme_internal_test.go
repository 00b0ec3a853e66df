package signaling

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/council"
)

func TestViewerLimiterPerAddressAndGlobal(t *testing.T) {
	l := newViewerLimiter(ProgrammeConfig{ViewerTokensPerMinute: 6, ViewerTokenBurst: 2, ViewerTokensPerSecond: 1}.withDefaults())
	now := time.Unix(1000, 0)
	for i := range 2 {
		if _, ok := l.allow("10.0.0.1", now); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	wait, ok := l.allow("10.0.0.1", now)
	if ok || wait <= 0 || wait > 10*time.Second {
		t.Errorf("third request at once: ok=%v wait %s, want a refusal with a wait of up to 10 s (6 a minute)", ok, wait)
	}
	// 10 s later the address has one token again.
	if _, ok := l.allow("10.0.0.1", now.Add(10*time.Second)); !ok {
		t.Error("no token 10 s later at 6 a minute")
	}
	// The global bucket (1 a second, burst 2) is full again; the request above took one,
	// another address takes the last, and a third must wait.
	if _, ok := l.allow("10.0.0.2", now.Add(10*time.Second)); !ok {
		t.Error("the global bucket should hold a token 10 s later")
	}
	if _, ok := l.allow("10.0.0.3", now.Add(10*time.Second)); ok {
		t.Error("a third address in the same instant passed the global limit")
	}
	// Refused globally, the address keeps its own token.
	if _, ok := l.allow("10.0.0.3", now.Add(11*time.Second)); !ok {
		t.Error("the address was charged for a request the server refused")
	}
}

func TestChaptersFromTheState(t *testing.T) {
	at := time.Date(2024, 1, 31, 18, 0, 0, 0, time.UTC)
	v := &council.View{
		Session: council.Session{Title: "Séance du 31 janvier", OpenedAt: at},
		Items: []council.Item{
			{ID: "1", Title: "Budget", OpenedAt: at.Add(time.Minute)},
			{ID: "2", Title: "Eau"},
		},
		Votes: []council.Vote{{ID: "v1", Item: "1", OpenedAt: at.Add(2 * time.Minute), ClosedAt: at.Add(3 * time.Minute),
			Result: &council.Result{For: 12, Against: 3, Abstain: 1, Adopted: true}}},
	}
	got := chaptersOf(v)
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

func TestViewerAddressTrustsForwardingOnlyFromARelay(t *testing.T) {
	direct := httptest.NewRequest("POST", "/api/rooms/r/viewer-token", nil)
	direct.RemoteAddr = "192.0.2.7:51000"
	direct.Header.Set("X-Forwarded-For", "203.0.113.9")
	if got := viewerAddress(direct); got != "192.0.2.7" {
		t.Errorf("a direct request is counted against %q, want its own address", got)
	}
	relayed := direct.Clone(direct.Context())
	relayed.Header.Set(RelayHeader, "B")
	if got := viewerAddress(relayed); got != "relayed:203.0.113.9" {
		t.Errorf("a relayed request is counted against %q, want the client the entry node saw", got)
	}
}
