package store

import (
	"fmt"
	"strings"
)

// fileExt marks journal files in a store directory.
const fileExt = ".jsonl"

// fileName maps a journal name to a file name that is safe on every common file
// system: lowercase ASCII letters, digits, '-' and '_' stand for themselves, every
// other byte is written %XX (uppercase hex). Upper case letters are escaped too, so
// that two names differing only in case stay two files on case-insensitive systems.
// The mapping is one-to-one and reversible, so the directory listing is the index.
func fileName(journal string) string {
	var b strings.Builder
	for i := 0; i < len(journal); i++ {
		c := journal[i]
		if isPlainByte(c) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	b.WriteString(fileExt)
	return b.String()
}

// journalName reverses fileName; ok is false for a name fileName cannot produce.
func journalName(file string) (string, bool) {
	enc, found := strings.CutSuffix(file, fileExt)
	if !found || enc == "" {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		switch {
		case isPlainByte(c):
			b.WriteByte(c)
		case c == '%' && i+2 < len(enc) && isUpperHex(enc[i+1]) && isUpperHex(enc[i+2]):
			v := unhex(enc[i+1])<<4 | unhex(enc[i+2])
			if isPlainByte(v) {
				return "", false // fileName never escapes these
			}
			b.WriteByte(v)
			i += 2
		default:
			return "", false
		}
	}
	name := b.String()
	if checkName(name) != nil {
		return "", false
	}
	return name, true
}

func isPlainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'A' + 10
}
