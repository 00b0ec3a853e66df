package council_test

import (
	"reflect"
	"regexp"
	"slices"
	"testing"

	"github.com/ingeco/hemicycle/council"
)

// TestLabelsAreCompleteInBothLanguages: every word of the server's texts exists in French and
// in English, and each format takes the same arguments in both, so that a new label cannot be
// added in one language only.
func TestLabelsAreCompleteInBothLanguages(t *testing.T) {
	verbs := regexp.MustCompile(`%[a-z]`)
	fr, en := reflect.ValueOf(council.FrenchLabels()), reflect.ValueOf(council.EnglishLabels())
	typ := fr.Type()
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		switch f, e := fr.Field(i), en.Field(i); f.Kind() {
		case reflect.String:
			if f.String() == "" || e.String() == "" {
				t.Errorf("%s: French %q, English %q: both are needed", name, f.String(), e.String())
			}
			if fv, ev := verbs.FindAllString(f.String(), -1), verbs.FindAllString(e.String(), -1); !slices.Equal(fv, ev) {
				t.Errorf("%s: French takes %v, English %v", name, fv, ev)
			}
		case reflect.Array:
			for j := range f.Len() {
				if f.Index(j).String() == "" || e.Index(j).String() == "" {
					t.Errorf("%s[%d] is missing in a language", name, j)
				}
			}
		default:
			t.Errorf("%s is a %s: this test knows only strings and arrays of them", name, f.Kind())
		}
	}
}

func TestLabelsForALanguageCode(t *testing.T) {
	for code, want := range map[string]string{"fr": "Procès-verbal", "en": "Minutes"} {
		l, err := council.LabelsFor(code)
		if err != nil || l.Lang != code || l.Minutes != want {
			t.Errorf("LabelsFor(%q) = %q %q, %v", code, l.Lang, l.Minutes, err)
		}
	}
	for _, bad := range []string{"", "de", "FR", "fr-FR"} {
		if _, err := council.LabelsFor(bad); err == nil {
			t.Errorf("LabelsFor(%q) accepted", bad)
		}
	}
}
