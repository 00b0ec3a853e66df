package main

import (
	"errors"
	"flag"
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
  hemicycle journal verify [--keys FILE]... [--require-signed | --chain-only] JOURNAL...
  hemicycle journal keys new|rotate|public --ring FILE [--from TIME]`

// cmdJournal checks journals offline and manages the key ring that signs them.
func cmdJournal(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(journalUsage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, journalUsage)
		return flag.ErrHelp
	case "verify":
		return cmdJournalVerify(args[1:], stdout, stderr)
	case "keys":
		return cmdJournalKeys(args[1:], stdout, stderr)
	}
	return fmt.Errorf("journal: unknown command %q\n%s", args[0], journalUsage)
}

// keyFiles collects --keys, which may be given once per node or deployment whose keys are
// trusted.
type keyFiles []string

func (k *keyFiles) String() string     { return strings.Join(*k, ",") }
func (k *keyFiles) Set(v string) error { *k = append(*k, v); return nil }

// cmdJournalVerify checks each journal file's hash chain and every entry's signature:
//
//	hemicycle journal verify [--keys FILE]... [--require-signed | --chain-only] JOURNAL...
//
// The keys are JWK Sets, the ones a node publishes at /.well-known/hemicycle-journal-keys,
// or its key ring file; without --keys, the key ring beside the journal directory (the
// layout a node writes: DATA_DIR/journal/ROOM.jsonl and DATA_DIR/journal-keys.json).
// Entries written before signing began pass, reported as unsigned, unless --require-signed.
func cmdJournalVerify(args []string, stdout, stderr io.Writer) error {
	flags := subcommandFlags("journal verify", stdout, stderr)
	var keyPaths keyFiles
	flags.Var(&keyPaths, "keys", "the trusted public keys: a JWK Set, as GET /.well-known/hemicycle-journal-keys answers; repeat it for the keys of several deployments (default: DATA_DIR/journal-keys.json beside the journal directory)")
	chainOnly := flags.Bool("chain-only", false, "check the hash chain alone, not the signatures")
	requireSigned := flags.Bool("require-signed", false, "refuse a journal with entries written before signing began, which carry no signature")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() == 0 {
		return errors.New("journal verify: no journal file given\n" + journalUsage)
	}
	if *chainOnly && (len(keyPaths) > 0 || *requireSigned) {
		return errors.New("journal verify: --chain-only excludes --keys and --require-signed")
	}
	var failed error
	for _, path := range flags.Args() {
		if err := verifyJournalFile(path, keyPaths, *chainOnly, *requireSigned, stdout); err != nil {
			fmt.Fprintf(stdout, "%s: %v\n", path, err)
			failed = errors.Join(failed, fmt.Errorf("%s: %w", path, err))
		}
	}
	return failed
}

// verifyJournalFile checks one journal and says what held.
func verifyJournalFile(path string, keyPaths []string, chainOnly, requireSigned bool, stdout io.Writer) error {
	var keys store.PublicKeys
	var from string
	if !chainOnly {
		var err error
		if keys, from, err = trustedKeys(keyPaths, path); err != nil {
			return err
		}
		if keys == nil {
			return fmt.Errorf("no keys to check its signatures with (no %s): pass --keys FILE, the keys its node publishes at %s, or --chain-only for the hash chain alone", from, signaling.JournalKeysPath)
		}
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
	fmt.Fprintf(stdout, "%s: %d entries, hash chain intact, %s\n", path, len(sound), signingReport(sound, keys, from))
	if n := store.Unsigned(sound); requireSigned && n > 0 {
		return fmt.Errorf("REFUSED (--require-signed): %s not signed", entryRange(1, n))
	}
	return nil
}

// signingReport says, in a clerk's words, how far a verified journal is signed and what that
// proves: entries written before signing began carry no signature, but the first signed
// entry's covers them.
func signingReport(entries []store.Entry, keys store.PublicKeys, from string) string {
	n, unsigned := len(entries), store.Unsigned(entries)
	last := entries[n-1]
	began := keys.SigningBegan().UTC().Format(time.RFC3339)
	switch unsigned {
	case 0:
		return fmt.Sprintf("every entry signed by a trusted key (from %s); last hash %s, signature %s by key %s", from, last.Hash, last.Sig, last.Key)
	case n:
		return fmt.Sprintf("NOT SIGNED: every entry was written before this town's journals were signed (signing began %s). The chain shows the entries hang together, not that nobody rewrote them: compare the last hash %s with the one in the minutes", began, last.Hash)
	}
	return fmt.Sprintf("%s written before signing began (%s), not signed themselves, but the signature of entry %d covers them: unchanged since; %s signed by a trusted key (from %s); last hash %s, signature %s by key %s",
		entryRange(1, unsigned), began, unsigned+1, entryRange(unsigned+1, n), from, last.Hash, last.Sig, last.Key)
}

func entryRange(first, last int) string {
	if first == last {
		return fmt.Sprintf("entry %d", first)
	}
	return fmt.Sprintf("entries %d to %d", first, last)
}

// trustedKeys reads the public keys in the files given, merged, or else the key ring a node
// keeps beside the journal directory holding journal (nil, without error, when there is no
// such file). from says where they came from.
func trustedKeys(paths []string, journal string) (keys store.PublicKeys, from string, err error) {
	if len(paths) == 0 {
		abs, err := filepath.Abs(journal)
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
	keys = store.PublicKeys{}
	for _, path := range paths {
		k, err := readPublicKeys(path)
		if err != nil {
			return nil, "", err
		}
		if err := keys.Merge(k); err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
	}
	return keys, strings.Join(paths, ", "), nil
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
//	hemicycle journal keys new    --ring FILE               a ring with one key
//	hemicycle journal keys rotate --ring FILE [--from TIME] add a key signing from TIME on
//	hemicycle journal keys public --ring FILE               the public keys, as published
func cmdJournalKeys(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stdout, journalUsage)
		return flag.ErrHelp
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("journal keys: say new, rotate or public\n" + journalUsage)
	}
	action := args[0]
	flags := subcommandFlags("journal keys "+action, stdout, stderr)
	ringPath := flags.String("ring", "", "the key ring file, journal_keys in the configuration (required)")
	fromText := flags.String("from", "", "rotate: when the new key starts signing, RFC 3339 (default: now); with several nodes, after the new file reaches them all")
	if err := parseOptions(flags, args[1:]); err != nil {
		return err
	}
	if *ringPath == "" {
		return fmt.Errorf("journal keys %s: --ring FILE is required: the file journal_keys names (outside the data directory; --dev uses DATA_DIR/%s)", action, store.KeyringFile)
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
