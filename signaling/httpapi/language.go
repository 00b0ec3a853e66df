package httpapi

import (
	"net/http"

	"golang.org/x/text/language"
)

// The languages the server words its answers in, French first: the councils it serves are
// French, so French is what a request naming no language, or only others, gets.
var answerLanguages = language.NewMatcher([]language.Tag{language.French, language.English})

// Language is the language to answer a person in, from the request's Accept-Language: "en"
// when they prefer English to French, "fr" otherwise. Every answer in words (refusals, the
// clerk's import errors, warnings) takes its language from here.
func Language(r *http.Request) string {
	if _, i := language.MatchStrings(answerLanguages, r.Header.Get("Accept-Language")); i == 1 {
		return "en"
	}
	return "fr"
}

// Refuse answers a refusal worded in both languages: {"error": the reason in the caller's
// Language, "reasons": {"en": …, "fr": …}}, so that a console shows it as it is and a client
// in the other language can still pick its own.
func Refuse(w http.ResponseWriter, r *http.Request, status int, en, fr string) {
	RefuseWith(w, r, status, en, fr, nil)
}

// RefuseWith is Refuse with more fields beside the reasons (the line of a file at fault).
func RefuseWith(w http.ResponseWriter, r *http.Request, status int, en, fr string, more map[string]any) {
	out := map[string]any{"error": fr, "reasons": map[string]string{"en": en, "fr": fr}}
	if Language(r) == "en" {
		out["error"] = en
	}
	for k, v := range more {
		out[k] = v
	}
	WriteJSON(w, status, out)
}
