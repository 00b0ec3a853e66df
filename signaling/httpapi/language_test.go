package httpapi

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// One choice of language for every answer in words: English only when the caller prefers it
// to French; French for no language, for others only, and for anything unreadable.
func TestLanguageFromAcceptLanguage(t *testing.T) {
	for header, want := range map[string]string{
		"":                          "fr",
		"*":                         "fr",
		"fr":                        "fr",
		"fr-FR,fr;q=0.9,en;q=0.8":   "fr",
		"en":                        "en",
		"en-GB,en;q=0.9":            "en",
		"de-DE,de;q=0.9,en;q=0.5":   "en", // German first, then English: English
		"de-CH,fr;q=0.3,en;q=0.7":   "en", // English weighs more than French
		"en;q=0.2,fr":               "fr",
		"de":                        "fr",
		"not a language;;q=oops,,,": "fr",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if header != "" {
			r.Header.Set("Accept-Language", header)
		}
		if got := Language(r); got != want {
			t.Errorf("Accept-Language %q: %s, want %s", header, got, want)
		}
	}
}

func TestRefuseAnswersInTheCallersLanguageWithBoth(t *testing.T) {
	for lang, want := range map[string]string{"": "refusé", "en-US": "refused"} {
		r := httptest.NewRequest("POST", "/", nil)
		r.Header.Set("Accept-Language", lang)
		w := httptest.NewRecorder()
		Refuse(w, r, 409, "refused", "refusé")
		var out struct {
			Error   string            `json:"error"`
			Reasons map[string]string `json:"reasons"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		if w.Code != 409 || out.Error != want || out.Reasons["en"] != "refused" || out.Reasons["fr"] != "refusé" {
			t.Errorf("Accept-Language %q: %d %+v, want 409 %q with both", lang, w.Code, out, want)
		}
	}
}
