package mail

import (
	"encoding/base64"
	"io"
	netmail "net/mail"
	"strings"
)

// parseAddress returns the bare address of "Name <a@b>" or "a@b".
func parseAddress(s string) (string, error) {
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return "", err
	}
	return a.Address, nil
}

// hostOf is the domain of an address, for HELO and Message-ID.
func hostOf(addr string) string {
	if _, host, ok := strings.Cut(addr, "@"); ok && host != "" {
		return host
	}
	return "localhost"
}

// writeBase64Lines writes data in base64 in lines of 76 characters (RFC 2045).
func writeBase64Lines(w io.Writer, data []byte) error {
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 0 {
		n := min(76, len(enc))
		if _, err := io.WriteString(w, enc[:n]+"\r\n"); err != nil {
			return err
		}
		enc = enc[n:]
	}
	return nil
}
