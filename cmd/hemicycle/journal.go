package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/store"
)

const journalUsage = `usage:
  hemicycle journal verify [--keys FILE | --chain-only] JOURNAL...
  hemicycle journal keys new|rotate|public [--ring FILE] [--from TIME]`

// cmdJournal checks journals offline and manages the key ring that signs them.
func cmdJournal(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(journalUsage)
	}
	switch args[0] {
	case "verify":
		return cmdJournalVerify(args[1:], stdout, stderr)
	case "keys":
		return cmdJournalKeys(args[1:], stdout, stderr)
	}
	return fmt.Errorf("journal: unknown command %q\n%s", args[0], journalUsage)
}

// cmdJournalVerify checks each journal file's hash chain and every entry's signature:
//
//	hemicycle journal verify [--keys FILE | --chain-only] JOURNAL...
//
// The keys are a JWK Set, the ones a node publishes at /.well-known/hemicycle-journal-keys,
// or its key ring file; without --keys, the key ring beside the journal directory (the
// layout a node writes: DATA_DIR/journal/ROOM.jsonl and DATA_DIR/journal-keys.json).
func cmdJournalVerify(args []string, stdout, stderr io.Writer) error {
	flags := subcommandFlags("journal verify", stderr)
	keysPath := flags.String("keys", "", "the trusted public keys: a JWK Set, as GET /.well-known/hemicycle-journal-keys answers (default: DATA_DIR/journal-keys.json beside the journal directory)")
	chainOnly := flags.Bool("chain-only", false, "check the hash chain alone, not the signatures (journals written before signing)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() == 0 {
		return errors.New("journal verify: no journal file given\n" + journalUsage)
	}
	if *chainOnly && *keysPath != "" {
		return errors.New("journal verify: --keys and --chain-only exclude each other")
	}
	var given store.PublicKeys
	if *keysPath != "" {
		k, err := readPublicKeys(*keysPath)
		if err != nil {
			return fmt.Errorf("journal verify: %w", err)
		}
		given = k
	}
	var failed error
	for _, path := range flags.Args() {
		if err := verifyJournalFile(path, given, *chainOnly, stdout); err != nil {
			fmt.Fprintf(stdout, "%s: %v\n", path, err)
			failed = errors.Join(failed, fmt.Errorf("%s: %w", path, err))
		}
	}
	return failed
}

// verifyJournalFile checks one journal and says what held.
func verifyJournalFile(path string, keys store.PublicKeys, chainOnly bool, stdout io.Writer) error {
	from := "--keys"
	if keys == nil && !chainOnly {
		k, ringPath, err := keysBeside(path)
		if err != nil {
			return err
		}
		if k == nil {
			return fmt.Errorf("no keys to check its signatures with (no %s): pass --keys FILE, the keys its node publishes at %s, or --chain-only for the hash chain alone", ringPath, signaling.JournalKeysPath)
		}
		keys, from = k, ringPath
	}
	sound, err := store.VerifyFile(path, keys)
	if err != nil {
		return fmt.Errorf("BROKEN after %d good entries: %w", len(sound), err)
	}
	if len(sound) == 0 {
		fmt.Fprintf(stdout, "%s: 0 entries\n", path)
		return nil
	}
	last := sound[len(sound)-1]
	if chainOnly {
		fmt.Fprintf(stdout, "%s: %d entries, hash chain intact; signatures not checked (--chain-only); last hash %s\n", path, len(sound), last.Hash)
		return nil
	}
	fmt.Fprintf(stdout, "%s: %d entries, hash chain intact, every entry signed by a trusted key (from %s); last hash %s, signature %s by key %s\n",
		path, len(sound), from, last.Hash, last.Sig, last.Key)
	return nil
}

// keysBeside reads the public keys of the key ring a node keeps beside the journal
// directory holding path; none, without error, when there is no such file.
func keysBeside(path string) (store.PublicKeys, string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, "", err
	}
	ring := filepath.Join(filepath.Dir(filepath.Dir(abs)), store.KeyringFile)
	keys, err := readPublicKeys(ring)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ring, nil
	}
	return keys, ring, err
}

func readPublicKeys(path string) (store.PublicKeys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read journal keys: %w", err)
	}
	keys, err := store.ParsePublicKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// cmdJournalKeys manages the key ring that signs the journals, the same file on every node:
//
//	hemicycle journal keys new    [--ring FILE]               a ring with one key
//	hemicycle journal keys rotate [--ring FILE] [--from TIME] add a key signing from TIME on
//	hemicycle journal keys public [--ring FILE]               the public keys, as published
func cmdJournalKeys(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("journal keys: say new, rotate or public\n" + journalUsage)
	}
	action := args[0]
	flags := subcommandFlags("journal keys "+action, stderr)
	ringPath := flags.String("ring", filepath.Join(defaultConfig().DataDir, store.KeyringFile), "the key ring file (journal_keys in the configuration)")
	fromText := flags.String("from", "", "rotate: when the new key starts signing, RFC 3339 (default: now); with several nodes, after the new file reaches them all")
	if err := parseOptions(flags, args[1:]); err != nil {
		return err
	}
	from := time.Now()
	if *fromText != "" {
		if action != "rotate" {
			return fmt.Errorf("journal keys %s: --from is for rotate", action)
		}
		t, err := time.Parse(time.RFC3339, *fromText)
		if err != nil {
			return fmt.Errorf("journal keys rotate: --from %q: %w", *fromText, err)
		}
		from = t
	}
	switch action {
	case "new":
		if _, err := os.Stat(*ringPath); err == nil {
			return fmt.Errorf("journal keys new: %s exists already: rotate it instead (its keys verify the journals they signed)", *ringPath)
		}
		ring, err := store.NewKeyring(from)
		if err == nil {
			err = ring.Save(*ringPath)
		}
		if err != nil {
			return fmt.Errorf("journal keys new: %w", err)
		}
		fmt.Fprintf(stdout, "%s: new key ring, key %s; install this file on every node (journal_keys)\n", *ringPath, ring.Current(from).ID)
	case "rotate":
		ring, err := store.LoadKeyring(*ringPath)
		if err == nil {
			ring, err = ring.Rotate(from)
		}
		if err == nil {
			err = ring.Save(*ringPath)
		}
		if err != nil {
			return fmt.Errorf("journal keys rotate: %w", err)
		}
		fmt.Fprintf(stdout, "%s: key %s signs from %s on; the older keys stay for what they signed. Install this file on every node and restart each (before then, with several nodes).\n",
			*ringPath, ring.Current(from).ID, from.UTC().Format(time.RFC3339))
	case "public":
		ring, err := store.LoadKeyring(*ringPath)
		if err != nil {
			return fmt.Errorf("journal keys public: %w", err)
		}
		data, err := ring.Public().MarshalJSON()
		if err != nil {
			return fmt.Errorf("journal keys public: %w", err)
		}
		fmt.Fprintf(stdout, "%s\n", data)
	default:
		return fmt.Errorf("journal keys: unknown action %q: say new, rotate or public", action)
	}
	return nil
}
