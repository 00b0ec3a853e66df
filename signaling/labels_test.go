package signaling_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// TestChaptersInTheLabelsLanguage runs a sitting through the API (two items, a vote adopted
// with its question, one rejected without), lets a second server replay its journal, and lists
// the recording's chapters from that state: in French with the French labels, in English with
// the English ones.
func TestChaptersInTheLabelsLanguage(t *testing.T) {
	ts, j := startCouncilServer(t)
	room := "chapitres"
	chair, clerk := openSession(t, ts, room, "fr-commune")
	api := "/api/rooms/" + room
	for _, seat := range []int{1, 2, 3} {
		must(t, ts, "POST", api+"/attendance/arrival", clerk, map[string]any{"seat": seat, "place": "chamber"})
	}
	vote := func(id, item, question string, choices ...string) {
		must(t, ts, "POST", api+"/votes", chair, map[string]any{"id": id, "item": item, "mode": "roll-call", "question": question})
		for i, c := range choices {
			must(t, ts, "POST", api+"/votes/"+id+"/ballots", chair, map[string]any{"seat": i + 1, "choice": c})
		}
		must(t, ts, "POST", api+"/votes/"+id+"/close", chair, nil)
	}
	must(t, ts, "POST", api+"/items", chair, map[string]any{"id": "1", "title": "Budget primitif"})
	must(t, ts, "POST", api+"/items", chair, map[string]any{"id": "2", "title": "Tarifs de l'eau"})
	must(t, ts, "POST", api+"/items/1/open", chair, nil)
	vote("v1", "1", "Adopter le budget primitif", "for", "for", "against")
	must(t, ts, "POST", api+"/items/1/close", chair, nil)
	must(t, ts, "POST", api+"/items/2/open", chair, nil)
	vote("v2", "2", "", "against", "against", "abstain")
	must(t, ts, "POST", api+"/items/2/close", chair, nil)
	must(t, ts, "POST", api+"/session/close", chair, nil)

	// A fresh server reads the session back from the journal alone.
	again := startServer(t, func(c *signaling.Config) { c.Journal, c.Profiles = j, signalingtest.Profile })
	status, raw := again.Call(t, "GET", api+"/state", clerk, nil)
	var view *council.View
	if status != 200 || json.Unmarshal(raw, &view) != nil || view == nil {
		t.Fatalf("the replayed journal gives no session: %d %s", status, raw)
	}
	for _, c := range []struct {
		labels council.Labels
		want   []string
	}{
		{council.FrenchLabels(), []string{
			"Ouverture de la séance Séance du 27 novembre",
			"Point 1 : Budget primitif",
			"Vote : Adopter le budget primitif",
			"Résultat : adopté (2 pour, 1 contre, 0 abstentions)",
			"Point 2 : Tarifs de l'eau",
			"Vote : Tarifs de l'eau",
			"Résultat : rejeté (0 pour, 2 contre, 1 abstentions)",
			"Clôture de la séance",
		}},
		{council.EnglishLabels(), []string{
			"Opening of the session Séance du 27 novembre",
			"Item 1: Budget primitif",
			"Vote: Adopter le budget primitif",
			"Result: adopted (2 for, 1 against, 0 abstentions)",
			"Item 2: Tarifs de l'eau",
			"Vote: Tarifs de l'eau",
			"Result: rejected (0 for, 2 against, 1 abstentions)",
			"Closing of the session",
		}},
	} {
		var got []string
		chapters := signaling.ChaptersOf(view, c.labels)
		for _, ch := range chapters {
			got = append(got, ch.Title)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("chapters with the %s labels:\n got %q\nwant %q", c.labels.Lang, got, c.want)
		}
		if !slices.IsSortedFunc(chapters, func(a, b broadcast.Chapter) int { return a.At.Compare(b.At) }) {
			t.Errorf("chapters with the %s labels are not in time order: %+v", c.labels.Lang, chapters)
		}
	}
}

// TestServerLanguage: the server's labels are French unless configured; the minutes follow
// them when the reader names no language, the reader's ?lang= otherwise, and a language we do
// not write is refused. The recording's own chapter titles come from the same labels.
func TestServerLanguage(t *testing.T) {
	if got := signaling.ServerLabels(signaling.Config{}); got.Lang != "fr" {
		t.Errorf("default labels %q, want fr", got.Lang)
	}
	rc := signaling.WithChapterWords(broadcast.RecordingConfig{Dir: "recordings"}, council.EnglishLabels())
	if rc.BleepTitle != "Passage cut (bleep)" || rc.ResumedTitleF != "%s (continued)" || rc.ResumedTitle != "Continued" {
		t.Errorf("English recording titles %q %q %q", rc.BleepTitle, rc.ResumedTitleF, rc.ResumedTitle)
	}

	ts, _ := startCouncilServer(t, func(c *signaling.Config) { c.Labels = council.EnglishLabels() })
	room := "langue"
	_, clerk := openSession(t, ts, room, "fr-commune")
	minutes := func(query string) (int, string) {
		req, _ := http.NewRequest("GET", ts.HTTP.URL+"/api/rooms/"+room+"/minutes?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+clerk)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for query, want := range map[string]string{"format=md": "# Minutes", "format=md&lang=fr": "# Procès-verbal", "format=md&lang=en": "# Minutes"} {
		if code, md := minutes(query); code != 200 || !strings.Contains(md, want) {
			t.Errorf("minutes?%s: %d, want 200 with %q:\n%s", query, code, want, md)
		}
	}
	if code, body := minutes("format=md&lang=de"); code != 400 || !strings.Contains(body, `lang \"de\": use fr or en`) {
		t.Errorf("minutes in German: %d %s, want 400 naming the languages", code, body)
	}
}
