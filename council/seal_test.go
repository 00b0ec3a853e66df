package council_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/council"
)

// The minutes end with the journal's seal: its last hash, signature and public key, so
// that the record they were drawn from can be checked; an unsigned journal says so.
func TestSealInTheMinutes(t *testing.T) {
	s := newSitting(t, "generic", 3)
	signed := &council.JournalSeal{Journal: "conseil", Entries: 24, Hash: "bda9268d", KeyID: "20261207-1a2b3c4d", Signature: "c2ln_-A", PublicKey: "a2V5_-B"}
	cases := []struct {
		name   string
		seal   *council.JournalSeal
		labels *council.Labels
		html   bool
		want   []string
	}{
		{"markdown, French", signed, nil, false, []string{
			"## Intégrité du journal\n\n- **Journal** : conseil, 24 entrées\n",
			"- **Empreinte SHA-256 de la dernière entrée** : `bda9268d`\n",
			"- **Signature Ed25519 (clé 20261207-1a2b3c4d)** : `c2ln_-A`\n",
			"- **Clé publique** : `a2V5_-B`\n",
		}},
		{"html, English", signed, ptr(council.EnglishLabels()), true, []string{
			"<h2>Journal integrity</h2>",
			"<dt>Journal</dt><dd>conseil, 24 entries</dd>",
			"<dt>Ed25519 signature (key 20261207-1a2b3c4d)</dt><dd><code>c2ln_-A</code></dd>",
			"<dt>Public key</dt><dd><code>a2V5_-B</code></dd>",
		}},
		{"markdown, English, unsigned", &council.JournalSeal{Journal: "conseil", Entries: 3, Hash: "00ff"}, ptr(council.EnglishLabels()), false, []string{
			"- **SHA-256 hash of the last entry**: `00ff`\n- Signature: none, the journal is not signed\n",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := council.DraftMinutes(s.st, time.UTC)
			m.Seal = c.seal
			checkRendered(t, m, c.labels, c.html, c.want)
		})
	}
	var out bytes.Buffer
	if err := council.DraftMinutes(s.st, time.UTC).WriteMarkdown(&out, nil); err != nil || strings.Contains(out.String(), "Intégrité") {
		t.Fatalf("minutes without a seal: %v\n%s", err, out.String())
	}
}

// checkRendered renders the minutes in Markdown, or HTML, and checks that they hold each of want.
func checkRendered(t *testing.T, m *council.Minutes, labels *council.Labels, html bool, want []string) {
	t.Helper()
	var out bytes.Buffer
	var err error
	if html {
		err = m.WriteHTML(&out, labels)
	} else {
		err = m.WriteMarkdown(&out, labels)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("lacks %q:\n%s", w, out.String())
		}
	}
}
