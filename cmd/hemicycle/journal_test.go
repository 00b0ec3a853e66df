package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/store"
)

// journalCmd runs `hemicycle journal ARGS...` and returns its stdout.
func journalCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"journal"}, args...), &out, &errOut, noEnv)
	return out.String() + errOut.String(), err
}

// forge rewrites a journal file as someone who can write it but lacks the key would: the
// first ballot against becomes a ballot for and every hash from there is computed again,
// the signatures kept as they were or removed. It returns the altered entry's seq.
func forge(t *testing.T, from, to string, strip bool) int {
	t.Helper()
	raw, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	prev, altered := "", 0
	for l := range strings.Lines(string(raw)) {
		var e store.Entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		if altered == 0 && e.Type == "ballot.cast" && strings.Contains(string(e.Data), `"choice":"against"`) {
			e.Data = json.RawMessage(strings.Replace(string(e.Data), `"choice":"against"`, `"choice":"for"`, 1))
			altered = int(e.Seq)
		}
		if altered != 0 {
			e.Prev = prev
			e.Hash = store.EntryHash(e)
			if strip {
				e.Key, e.Sig = "", ""
			}
		}
		prev = e.Hash
		b, _ := json.Marshal(e)
		out = append(out, string(b)+"\n")
	}
	if altered == 0 {
		t.Fatal("no ballot against in the journal")
	}
	if err := os.WriteFile(to, []byte(strings.Join(out, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	return altered
}

// A sitting held through the API on a real file store, then checked offline: untouched it
// verifies, with the keys beside the data or with those the server publishes; re-hashed
// without the key it fails, naming the entry; after a rotation it still verifies.
func TestJournalVerifySignedSitting(t *testing.T) {
	s := startAPIServer(t, time.UTC)
	holdSession(t, s)
	clerk := s.token(t, "greffe", auth.RoleClerk, 0)

	// The clerk approves the minutes, as read: an entry after the closing one.
	req, _ := http.NewRequest("GET", s.HTTP.URL+"/api/rooms/"+minutesRoom+"/minutes", nil)
	req.Header.Set("Authorization", "Bearer "+clerk)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	approved, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.must(t, time.Time{}, "POST", "/api/rooms/"+minutesRoom+"/minutes/approve", clerk, map[string]string{"digest": resp.Header.Get("Minutes-Digest")})

	out, err := journalCmd(t, "verify", s.journal)
	if err != nil {
		t.Fatalf("verify the untouched journal: %v\n%s", err, out)
	}
	var seal struct{ Hash, Signature, KeyID string }
	if err := json.Unmarshal(s.must(t, time.Time{}, "GET", "/api/rooms/"+minutesRoom+"/journal/seal", clerk, nil), &seal); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"22 entries, hash chain intact, every entry signed by a trusted key (from " + s.ring + ")", "last hash " + seal.Hash, "signature " + seal.Signature + " by key " + seal.KeyID} {
		if !strings.Contains(out, want) {
			t.Errorf("verify says %q, lacks %q", out, want)
		}
	}

	// The minutes are sealed at the entry that closed the sitting, as served and as drawn
	// offline, so that their approval, journalled after it, leaves them as approved.
	var closing store.Entry
	raw0, _ := os.ReadFile(s.journal)
	for l := range strings.Lines(string(raw0)) {
		var e store.Entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		if e.Type == "session.closed" {
			closing = e
		}
	}
	if closing.Sig == "" || closing.Hash == seal.Hash {
		t.Fatalf("closing entry %+v: want it signed, and not the journal's last (%s)", closing, seal.Hash)
	}
	status, served := s.do(t, time.Time{}, "GET", "/api/rooms/"+minutesRoom+"/minutes", clerk, nil)
	offline, _, err := minutes(t, "--journal", s.journal)
	if status != 200 || err != nil {
		t.Fatalf("minutes: %d %v", status, err)
	}
	if !bytes.Equal(served, approved) {
		t.Error("the minutes changed when their approval was journalled")
	}
	for _, doc := range []string{string(served), offline} {
		if !strings.Contains(doc, "`"+closing.Hash+"`") || !strings.Contains(doc, "`"+closing.Sig+"`") || strings.Contains(doc, seal.Hash) {
			t.Fatalf("the minutes are not sealed at the closing entry %d (%s):\n%s", closing.Seq, closing.Hash, doc)
		}
	}

	// A citizen with a copy of the journal and the keys the server publishes.
	resp, err = http.Get(s.HTTP.URL + signaling.JournalKeysPath)
	if err != nil {
		t.Fatal(err)
	}
	published, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/jwk-set+json" || strings.Contains(string(published), `"d"`) {
		t.Fatalf("GET %s: %d %s %s", signaling.JournalKeysPath, resp.StatusCode, resp.Header.Get("Content-Type"), published)
	}
	elsewhere := t.TempDir()
	keys, copied := filepath.Join(elsewhere, "keys.json"), filepath.Join(elsewhere, "copy.jsonl")
	raw, _ := os.ReadFile(s.journal)
	os.WriteFile(keys, published, 0o644)
	os.WriteFile(copied, raw, 0o644)
	if out, err := journalCmd(t, "verify", "--keys", keys, copied); err != nil || !strings.Contains(out, "every entry signed") {
		t.Fatalf("verify a copy with the published keys: %v\n%s", err, out)
	}
	if out, err := journalCmd(t, "verify", copied); err == nil || !strings.Contains(out, "no keys to check its signatures with") || !strings.Contains(out, signaling.JournalKeysPath) {
		t.Fatalf("verify without any keys: %v\n%s", err, out)
	}

	for _, strip := range []bool{false, true} {
		forged := filepath.Join(elsewhere, "forged.jsonl")
		seq := forge(t, s.journal, forged, strip)
		// The hash chain alone holds: this is what the signatures are for.
		if out, err := journalCmd(t, "verify", "--chain-only", forged); err != nil || !strings.Contains(out, "hash chain intact; signatures not checked") {
			t.Fatalf("the forgery should hold as a chain: %v\n%s", err, out)
		}
		want := "BROKEN after 13 good entries: entry 14: its signature by key " + `"` + seal.KeyID + `"` + " does not match its hash: the entry, or an entry before it, was changed or removed and the chain re-hashed without the key"
		if strip {
			want = "BROKEN after 13 good entries: entry 14: not signed, though entry 1 before it is: it was rewritten by someone without the journal key, or appended by a node that does not sign"
		}
		out, err := journalCmd(t, "verify", "--keys", keys, forged)
		if err == nil || seq != 14 || !strings.Contains(out, want) {
			t.Fatalf("verify the forgery (signatures removed: %v; altered entry %d): %v\n%s\nwant %q", strip, seq, err, out, want)
		}
		if md, _, err := minutes(t, "--journal", forged, "--keys", keys); err == nil || md != "" || !strings.Contains(err.Error(), "entry 14: ") {
			t.Fatalf("minutes from the forgery: %v\n%s", err, md)
		}
	}

	// Another deployment's keys do not vouch for this journal.
	other := filepath.Join(elsewhere, "other-ring.json")
	if out, err := journalCmd(t, "keys", "new", "--ring", other); err != nil {
		t.Fatalf("keys new: %v\n%s", err, out)
	}
	if out, err := journalCmd(t, "verify", "--keys", other, copied); err == nil || !strings.Contains(out, "which is not among the trusted keys") {
		t.Fatalf("verify with another deployment's keys: %v\n%s", err, out)
	}

	// A rotation keeps the old key: the sitting still verifies, with the ring or with the
	// keys published after it.
	if out, err := journalCmd(t, "keys", "rotate", "--ring", s.ring, "--from", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}
	if out, err := journalCmd(t, "verify", s.journal); err != nil {
		t.Fatalf("verify after the rotation: %v\n%s", err, out)
	}
	pub, err := journalCmd(t, "keys", "public", "--ring", s.ring)
	if err != nil {
		t.Fatal(err)
	}
	after, err := store.ParsePublicKeys([]byte(pub))
	if err != nil || len(after) != 2 || strings.Contains(pub, `"d"`) {
		t.Fatalf("keys public after the rotation: %v\n%s", err, pub)
	}
	os.WriteFile(keys, []byte(pub), 0o644)
	if out, err := journalCmd(t, "verify", "--keys", keys, copied); err != nil {
		t.Fatalf("verify with the keys published after the rotation: %v\n%s", err, out)
	}
	if out, err := journalCmd(t, "keys", "new", "--ring", s.ring); err == nil || !strings.Contains(out+err.Error(), "exists already") {
		t.Fatalf("keys new over an existing ring: %v", err)
	}
}

// A town's journal from before signing existed: written by a store that did not sign, then
// the node upgraded (its key ring made on the first start after), which signs on. Verify
// says which entries are unsigned and passes, unless --require-signed; altered before or
// after signing began, it is refused, naming the entry.
func TestJournalVerifyWrittenBeforeSigning(t *testing.T) {
	data := t.TempDir()
	dir, ringPath := filepath.Join(data, "journal"), filepath.Join(data, store.KeyringFile)
	path := filepath.Join(dir, "conseil.jsonl")
	ctx := context.Background()
	sitting := time.Date(2026, 3, 5, 18, 30, 0, 0, time.UTC) // before the upgrade
	appendAt := func(j store.Journal, n int, from time.Time) {
		t.Helper()
		for i := range n {
			if _, err := j.Append(ctx, "conseil", 0, from.Add(time.Duration(i)*time.Minute), "note", json.RawMessage(`{"i":`+strconv.Itoa(i)+`}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	old, err := store.OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	appendAt(old, 4, sitting)
	old.Close()

	out, err := journalCmd(t, "keys", "new", "--ring", ringPath)
	if err != nil {
		t.Fatalf("keys new: %v\n%s", err, out)
	}
	// Only the unsigned entries so far: passes, and says what that proves.
	out, err = journalCmd(t, "verify", path)
	if err != nil || !strings.Contains(out, "4 entries, hash chain intact, NOT SIGNED: every entry was written before this town's journals were signed") {
		t.Fatalf("verify the journal before any signed entry: %v\n%s", err, out)
	}
	if out, err := journalCmd(t, "verify", "--require-signed", path); err == nil || !strings.Contains(out, "REFUSED (--require-signed): entries 1 to 4 not signed") {
		t.Fatalf("verify --require-signed: %v\n%s", err, out)
	}

	ring, err := store.LoadKeyring(ringPath)
	if err != nil {
		t.Fatal(err)
	}
	upgraded, err := store.OpenFile(dir, store.WithSigner(ring))
	if err != nil {
		t.Fatal(err)
	}
	if rec := upgraded.Recovery(); len(rec) != 0 {
		t.Fatalf("the upgraded node refused the old journal: %v", rec)
	}
	appendAt(upgraded, 2, time.Now())
	upgraded.Close()

	out, err = journalCmd(t, "verify", path)
	if err != nil || !strings.Contains(out, "6 entries, hash chain intact, entries 1 to 4 written before signing began") ||
		!strings.Contains(out, "the signature of entry 5 covers them: unchanged since; entries 5 to 6 signed by a trusted key") {
		t.Fatalf("verify the upgraded journal: %v\n%s", err, out)
	}
	if out, err := journalCmd(t, "verify", "--require-signed", path); err == nil || !strings.Contains(out, "entries 1 to 4 not signed") {
		t.Fatalf("verify --require-signed of the upgraded journal: %v\n%s", err, out)
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name  string
		from  int // the first entry changed and re-hashed
		strip bool
		want  string
	}{
		{"EntryBeforeSigningChanged", 2, false, "BROKEN after 4 good entries: entry 5: its signature by key"},
		{"SignaturesRemoved", 5, true, "BROKEN after 4 good entries: entry 5: not signed, though written at"},
	} {
		t.Run(f.name, func(t *testing.T) {
			forged := filepath.Join(t.TempDir(), "conseil.jsonl")
			var lines []string
			prev := ""
			for l := range strings.Lines(string(raw)) {
				var e store.Entry
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Fatal(err)
				}
				if int(e.Seq) == f.from {
					e.Data = json.RawMessage(`{"i":"forged"}`)
				}
				if int(e.Seq) >= f.from {
					e.Prev, e.Hash = prev, ""
					e.Hash = store.EntryHash(e)
					if f.strip {
						e.Key, e.Sig = "", ""
					}
				}
				prev = e.Hash
				b, _ := json.Marshal(e)
				lines = append(lines, string(b)+"\n")
			}
			os.WriteFile(forged, []byte(strings.Join(lines, "")), 0o600)
			if out, err := journalCmd(t, "verify", "--keys", ringPath, forged); err == nil || !strings.Contains(out, f.want) {
				t.Fatalf("verify the forgery: %v\n%s\nwant %q", err, out, f.want)
			}
		})
	}
}

// The keys of several deployments can be trusted at once (a journal signed before a town
// moved to another installation, say); two different keys under one id are refused.
func TestJournalVerifyKeysOfSeveralDeployments(t *testing.T) {
	s := startAPIServer(t, time.UTC)
	holdSession(t, s)
	other := filepath.Join(t.TempDir(), "other-ring.json")
	if out, err := journalCmd(t, "keys", "new", "--ring", other); err != nil {
		t.Fatalf("keys new: %v\n%s", err, out)
	}
	if out, err := journalCmd(t, "verify", "--keys", other, "--keys", s.ring, s.journal); err != nil || !strings.Contains(out, "every entry signed by a trusted key (from "+other+", "+s.ring+")") {
		t.Fatalf("verify with both deployments' keys: %v\n%s", err, out)
	}
	// The other ring's key under this deployment's key id.
	ours, theirs := publicKeysOf(t, s.ring), publicKeysOf(t, other)
	clash := store.PublicKeys{}
	for id := range ours {
		for _, pk := range theirs {
			pk.ID = id
			clash[id] = pk
		}
	}
	clashing := filepath.Join(t.TempDir(), "clash.json")
	data, err := clash.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(clashing, data, 0o644)
	if out, err := journalCmd(t, "verify", "--keys", s.ring, "--keys", clashing, s.journal); err == nil || !strings.Contains(out, "two different keys have the id") {
		t.Fatalf("verify with two keys under one id: %v\n%s", err, out)
	}
}

func publicKeysOf(t *testing.T, path string) store.PublicKeys {
	t.Helper()
	keys, err := readPublicKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// Where a node's journal key lives: outside --dev the deployment names the file and serve
// refuses to start without it; in --dev it is made on first start, once even when several
// nodes start together on the same file.
func TestJournalKeysOfANode(t *testing.T) {
	env := func(extra map[string]string) func(string) string {
		return func(k string) string {
			if k == "HEMICYCLE_KEYS" {
				return signalingtest.TestKeys.Key + ": " + signalingtest.TestKeys.Secret
			}
			return extra[k]
		}
	}
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.json")
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HEMICYCLE_DATA_DIR": dir}, "journal_keys is not set"},
		{map[string]string{"HEMICYCLE_DATA_DIR": dir, "HEMICYCLE_JOURNAL_KEYS": missing}, "journal_keys: " + missing + " does not exist: make it once with `hemicycle journal keys new --ring " + missing + "`"},
	} {
		err := run(context.Background(), []string{"serve", "--config", "../../configs/hemicycle.yaml", "--port", "0", "--udp-port", "0", "--tcp-port", "0"}, &bytes.Buffer{}, &bytes.Buffer{}, env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("serve with %v: %v, want a refusal saying %q", c.env, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, store.KeyringFile)); err == nil {
		t.Fatal("serve outside --dev made a key ring in the data directory")
	}

	// Three --dev nodes starting at once on one configured file sign with one ring.
	var logs bytes.Buffer
	cfg := defaultConfig()
	cfg.dev, cfg.JournalKeys = true, filepath.Join(dir, "cluster", "journal-keys.json")
	rings := make(chan store.PublicKeys, 3)
	for range 3 {
		go func() {
			ring, err := journalKeyring(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Error(err)
				rings <- nil
				return
			}
			rings <- ring.Public()
		}()
	}
	var ids []string
	for range 3 {
		ids = append(ids, strings.Join((<-rings).IDs(), ","))
	}
	if ids[0] == "" || ids[1] != ids[0] || ids[2] != ids[0] {
		t.Fatalf("nodes starting together hold the rings %q, want one", ids)
	}
	if fi, err := os.Stat(cfg.JournalKeys); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the ring made on first start: %v, %v; want mode 0600", fi, err)
	}
	// Made once, it is read again on the next start, with a warning only the first time.
	cfg.JournalKeys = filepath.Join(dir, "alone.json")
	log := slog.New(slog.NewTextHandler(&logs, nil))
	first, err := journalKeyring(cfg, log)
	if err != nil || !strings.Contains(logs.String(), "made a journal signing key ring on first start") {
		t.Fatalf("first --dev start: %v\n%s", err, logs.String())
	}
	logs.Reset()
	again, err := journalKeyring(cfg, log)
	if err != nil || again.Current(time.Now()).ID != first.Current(time.Now()).ID || logs.Len() != 0 {
		t.Fatalf("second --dev start: %v, key %s after %s\n%s", err, again.Current(time.Now()).ID, first.Current(time.Now()).ID, logs.String())
	}
}
