package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/ingeco/hemicycle/store"
)

// cmdJournal checks journals offline: "hemicycle journal verify FILE...".
func cmdJournal(args []string, stdout io.Writer) error {
	if len(args) < 2 || args[0] != "verify" {
		return errors.New("usage: hemicycle journal verify FILE [FILE...]")
	}
	var failed error
	for _, path := range args[1:] {
		n, err := store.VerifyFile(path)
		if err != nil {
			fmt.Fprintf(stdout, "%s: BROKEN after %d good entries: %v\n", path, n, err)
			failed = fmt.Errorf("%s: %w", path, err)
			continue
		}
		fmt.Fprintf(stdout, "%s: %d entries, hash chain intact\n", path, n)
	}
	return failed
}
