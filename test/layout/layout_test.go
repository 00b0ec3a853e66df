// Package layout checks the module's shape: which of our packages may import which.
package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// mayImport is the table of DESIGN.md section 3 (DESIGN.md lives outside the repository, so it
// is written again here; change both together): for each top-level folder, the other top-level
// folders its packages may import. A sub-package belongs to its top-level folder's row, and a
// package may always import others of its own folder. everything stands for every folder.
var mayImport = map[string][]string{
	"cmd/hemicycle": {everything},
	"signaling":     {"broadcast", "sfu", "auth", "council", "store"},
	"broadcast":     {"sfu"},
	"cluster":       {"store"},
	"sfu":           {},
	"council":       {},
	"auth":          {},
	"store":         {"council"},
	// The route table's types only: the web client declares its own rows (issue 19; argued
	// for DESIGN.md in the closing note).
	"web-client": {"signaling/httpapi"},
	"configs":    {},
	"test":       {everything},
}

const everything = "*"

// folder is the top-level folder of a package path relative to the module (cmd/hemicycle
// counts as one: cmd holds nothing else).
func folder(rel string) string {
	if rest, ok := strings.CutPrefix(rel, "cmd/"); ok {
		name, _, _ := strings.Cut(rest, "/")
		return "cmd/" + name
	}
	top, _, _ := strings.Cut(rel, "/")
	return top
}

// testSupport reports whether a package is test support: anything under test/, and a package
// whose name ends in "test" (store/redistest). Test support may import anything, and only test
// files and other test support may import it, so that no fixture reaches the binary.
func testSupport(rel string) bool {
	return folder(rel) == "test" || strings.HasSuffix(rel[strings.LastIndex(rel, "/")+1:], "test")
}

// allowed says why the package at importer may not import imported (both relative to the
// module), or "" if it may.
func allowed(importer, imported string) string {
	from, to := folder(importer), folder(imported)
	row, known := mayImport[from]
	switch {
	case testSupport(importer):
		return ""
	case testSupport(imported):
		return "test support, which only tests may import"
	case !known:
		return "a package outside the folders of DESIGN.md section 3 (" + from + ")"
	case from == to, slices.Contains(row, everything), slices.Contains(row, to), slices.Contains(row, imported):
		return ""
	}
	return from + " may import only " + strings.Join(row, ", ") + " of ours"
}

func TestTheRuleReadsTheTable(t *testing.T) {
	for _, c := range []struct {
		importer, imported string
		ok                 bool
	}{
		{"signaling", "broadcast", true},
		{"signaling", "cluster", false},
		{"broadcast", "sfu", true},
		{"broadcast", "signaling", false},
		{"sfu", "broadcast", false},
		{"council", "store", false},
		{"store", "council", true},
		{"configs/profiles", "council", false},
		{"cmd/hemicycle", "signaling", true},
		{"cmd/hemicycle", "cmd/hemicycle/clips", true},
		{"cmd/hemicycle", "test/media", false},
		{"cmd/hemicycle", "store/redistest", false},
		{"signaling", "signaling/signalingtest", false},
		{"signaling/signalingtest", "test/media", true},
		{"store/redistest", "cmd/hemicycle", true},
		{"test/media", "cmd/hemicycle/clips", true},
		{"cmd/other", "auth", false},
		{"tools", "auth", false},
	} {
		if got := allowed(c.importer, c.imported) == ""; got != c.ok {
			t.Errorf("%s importing %s: allowed %v, want %v (%s)", c.importer, c.imported, got, c.ok, allowed(c.importer, c.imported))
		}
	}
}

// pkg is what go list says of a package.
type pkg struct {
	ImportPath string
	Module     *struct{ Path string }
	Imports    []string // of the package's own files, not its tests'
	Error      *struct{ Err string }
}

// TestImportsFollowDesign lists every package of the module with go list and fails on each
// import of one of ours that DESIGN.md section 3 does not allow.
func TestImportsFollowDesign(t *testing.T) {
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Module,Imports,Error", "./...")
	cmd.Dir = strings.TrimSpace(string(root))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v %s", err, stderr.String())
	}
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("read go list's output: %v", err)
		}
		if p.Error != nil {
			t.Errorf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 || pkgs[0].Module == nil {
		t.Fatalf("go list found no package of the module:\n%s", out)
	}
	module := pkgs[0].Module.Path
	ours := func(path string) (string, bool) {
		if path == module {
			return "", true
		}
		return strings.CutPrefix(path, module+"/")
	}
	var seen []string
	for _, p := range pkgs {
		importer, _ := ours(p.ImportPath)
		seen = append(seen, folder(importer))
		for _, imp := range p.Imports {
			imported, ok := ours(imp)
			if !ok {
				continue
			}
			if why := allowed(importer, imported); why != "" {
				t.Errorf("%s imports %s: %s (DESIGN.md section 3)", importer, imported, why)
			}
		}
	}
	// The check above is only as good as the list: every folder of the table must have shown up.
	for f := range mayImport {
		if !slices.Contains(seen, f) {
			t.Errorf("go list listed no package in %s: %v", f, seen)
		}
	}
}
