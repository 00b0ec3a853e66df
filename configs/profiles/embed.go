// Package profiles holds Hemicycle's legal profiles as embedded YAML, so
// that the binary carries them. Parse one with council.ParseProfile.
package profiles

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// Names lists the shipped profiles ("fr-commune", …), sorted.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".") // an embed.FS root always reads
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Read returns a profile's YAML by name.
func Read(name string) ([]byte, error) {
	b, err := files.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("legal profile %q is not shipped (have %s)", name, strings.Join(Names(), ", "))
	}
	return b, nil
}

// FS exposes the profile files, e.g. to list them over HTTP.
func FS() fs.FS { return files }
