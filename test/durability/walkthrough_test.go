package durability

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// runWalkthrough runs every shell block of docs/walkthrough.md, in order, against a fresh
// development server, as a newcomer would paste them, and checks that the sitting got to its
// minutes.
func runWalkthrough(t *testing.T, bin string) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the walkthrough needs %s: %v", tool, err)
		}
	}
	doc := readDoc(t, "walkthrough.md")
	blocks := shellBlocks(doc)
	if len(blocks) < 10 {
		t.Fatalf("only %d shell blocks in docs/walkthrough.md", len(blocks))
	}

	// The reader's working directory: the repository root, with the built binary and ./data.
	work := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(work, "hemicycle")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(work, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(signalingtest.ModuleRoot(), "docs", "example-roster.csv"), filepath.Join(work, "docs", "example-roster.csv")); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, bin, filepath.Join(work, "data"))

	// The walkthrough's server is on 7880; this one is on a free port.
	script := "set -euo pipefail\n" + strings.ReplaceAll(strings.Join(blocks, "\n"), "http://127.0.0.1:7880", srv.URL)
	cmd := exec.CommandContext(t.Context(), "bash", "-c", script)
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the walkthrough's commands failed: %v\n%s\nserver log:\n%s", err, out, srv.Output())
	}
	text := string(out)
	for _, want := range []string{
		`"reached":true`,
		`seat 2 already holds a proxy (profile fr-epci-visio allows 1)`,
		`"seat":6,"choice":"for","castBy":2`,
		`"adopted":true`,
		"- **Pour (4)** : Anne Morel, Bruno Lefèvre, David Roussel, François Perrin (pouvoir à Bruno Lefèvre)",
		"- **Contre (1)** : Emma Faure",
		"- **Abstentions (1)** : Chloé Garnier",
		"24 entries, hash chain intact, every entry signed by a trusted key",
		"- **Chair**: Anne Morel", // the English minutes drawn offline
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the walkthrough's output lacks %q:\n%s", want, text)
		}
	}
	// Every refusal the walkthrough shows is a refusal it meets, word for word.
	for _, refusal := range []string{
		`{"error":"no session is open in this room: the chair or the clerk opens one first"}`,
		`{"error":"item \"1\" cannot open: quorum not reached: 3 present, 4 required of 7 in office (2 remote awaiting verification)"}`,
		`{"error":"show-of-hands vote refused: remote members take part (seats 4, 5) and profile fr-epci-visio then allows only roll-call, electronic"}`,
		`{"error":"seat 5 has already voted in vote \"1-1\" (against); a ballot is final"}`,
	} {
		if !strings.Contains(doc, refusal) || !strings.Contains(text, refusal) {
			t.Errorf("refusal %s is not both shown in the walkthrough and met when running it", refusal)
		}
	}
}
