package profiles_test

import (
	"bufio"
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/ingeco/hemicycle/configs/profiles"
	"github.com/ingeco/hemicycle/council"
)

func TestShippedProfilesParse(t *testing.T) {
	want := []string{"fr-2020-emergency", "fr-commune", "fr-epci-visio", "generic"}
	if got := profiles.Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, name := range want {
		b, err := profiles.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := council.ParseProfile(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.ID != name {
			t.Errorf("%s.yaml declares id %q", name, p.ID)
		}
	}
	if _, err := profiles.Read("fr-region"); err == nil || !strings.Contains(err.Error(), "have fr-2020-emergency, fr-commune") {
		t.Fatalf("reading a missing profile: %v", err)
	}
}

// Every rule must say where it comes from: each key line carries a comment,
// on the line itself or in the comment block just above it.
func TestEveryFieldCitesItsSource(t *testing.T) {
	for _, name := range profiles.Names() {
		b, _ := profiles.Read(name)
		sc := bufio.NewScanner(bytes.NewReader(b))
		line, commentAbove := 0, false
		for sc.Scan() {
			line++
			text := strings.TrimSpace(sc.Text())
			switch {
			case text == "":
				commentAbove = false
			case strings.HasPrefix(text, "#"):
				commentAbove = true
			default:
				key, value, _ := strings.Cut(text, ":")
				section := strings.TrimSpace(value) == "" // a mapping header such as "quorum:"
				if !section && !commentAbove && !strings.Contains(value, "#") {
					t.Errorf("%s.yaml line %d: field %q has no comment citing its source", name, line, key)
				}
				commentAbove = false
			}
		}
	}
}
