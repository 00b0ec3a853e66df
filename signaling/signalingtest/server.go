package signalingtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/configs/profiles"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/sfu"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/store"
)

// Server is a signalling server with its media engine on loopback, served over HTTP on a free
// port, and the keys its tokens are signed with.
type Server struct {
	Keys
	Signaling *signaling.Server
	HTTP      *httptest.Server
	WS        string        // the WebSocket URL SDK clients connect to
	Journal   store.Journal // the deliberation's journal, when an option gave one
}

// Option changes the server's configuration before it starts.
type Option func(*signaling.Config)

// Start starts a server verifying TestKeys, its media engine on loopback only, stopped when the
// test ends. With a programme configured, the programme's routes are mounted beside the
// server's own, as cmd/hemicycle mounts them.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	return StartOn(t, "127.0.0.1", opts...)
}

// StartOn is Start with the server's HTTP and media on ip, for clients that reach it from
// another network namespace (test/netlab).
func StartOn(t testing.TB, ip string, opts ...Option) *Server {
	t.Helper()
	log := Logger()
	loopback := net.ParseIP(ip).IsLoopback()
	engine, err := sfu.NewEngine(sfu.Config{UDPAddr: net.JoinHostPort(ip, "0"), Loopback: loopback, LoopbackOnly: loopback, Logger: log})
	if err != nil {
		t.Fatalf("media engine: %v", err)
	}
	cfg := signaling.Config{Verifier: auth.NewVerifier(TestKeys.KeySet()), Media: engine, Logger: log}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Media != engine { // NoMedia, or an engine of the test's own
		_ = engine.Close()
	}
	sig := signaling.NewServer(cfg)
	hs := httptest.NewUnstartedServer(sig.Handler())
	if !loopback {
		_ = hs.Listener.Close() // the one it made, on loopback
		if hs.Listener, err = net.Listen("tcp", net.JoinHostPort(ip, "0")); err != nil {
			sig.Close()
			if cfg.Media == engine {
				_ = engine.Close()
			}
			t.Fatalf("listen on %s: %v", ip, err)
		}
	}
	hs.Start()
	t.Cleanup(func() {
		sig.Close()
		hs.Close()
		if cfg.Media == engine {
			_ = engine.Close()
		}
	})
	return &Server{Keys: TestKeys, Signaling: sig, HTTP: hs, WS: "ws" + strings.TrimPrefix(hs.URL, "http"), Journal: cfg.Journal}
}

// NoMedia starts the server without a media engine, for suites that only call the HTTP API.
func NoMedia(c *signaling.Config) { c.Media = nil }

// Council gives the server a file journal in dir (closed when the test ends), which also
// keeps its records (bodies, prepared sittings), and the shipped legal profiles, so that
// sessions can be prepared and held.
func Council(t testing.TB, dir string) Option {
	t.Helper()
	j, err := store.OpenFile(dir)
	if err != nil {
		t.Fatalf("open the journal: %v", err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return func(c *signaling.Config) { c.Journal, c.Records, c.Profiles = j, j, Profile }
}

// SignedCouncil is Council with the journal signed as a node signs it: a key ring in
// dataDir/journal-keys.json (made if missing) and the journals in dataDir/journal, the
// layout `hemicycle journal verify` looks for; the server publishes the ring's keys.
func SignedCouncil(t testing.TB, dataDir string) Option {
	t.Helper()
	ring, _, err := store.LoadOrCreateKeyring(filepath.Join(dataDir, store.KeyringFile), time.Now())
	if err != nil {
		t.Fatalf("journal keys: %v", err)
	}
	j, err := store.OpenFile(filepath.Join(dataDir, "journal"), store.WithSigner(ring))
	if err != nil {
		t.Fatalf("open the journal: %v", err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return func(c *signaling.Config) { c.Journal, c.JournalKeys, c.Profiles = j, ring.Public(), Profile }
}

// JournalKeys makes a journal key ring file in dir, as `hemicycle journal keys new` does, for
// servers started outside --dev (journal_keys); every node given it signs with the same keys.
func JournalKeys(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, store.KeyringFile)
	ring, err := store.NewKeyring(time.Now())
	if err == nil {
		err = ring.Save(path)
	}
	if err != nil {
		t.Fatalf("journal keys: %v", err)
	}
	return path
}

// Profile reads one of the shipped legal profiles.
func Profile(name string) (*council.Profile, error) {
	data, err := profiles.Read(name)
	if err != nil {
		return nil, err
	}
	return council.ParseProfile(data)
}

// Programme gives every room a public programme configured by pc; its viewer tokens are
// signed with TestKeys and its broadcast logs with the server, unless pc says otherwise.
func Programme(pc signaling.ProgrammeConfig) Option {
	return func(c *signaling.Config) {
		if pc.Key == "" {
			pc.Key, pc.Secret = TestKeys.Key, TestKeys.Secret
		}
		if pc.Broadcast.Logger == nil {
			pc.Broadcast.Logger = c.Logger
		}
		c.Programme = &pc
	}
}

// Call sends a request to path on the server; see Call.
func (s *Server) Call(t testing.TB, method, path, token string, body any) (int, []byte) {
	t.Helper()
	return Call(t, method, s.HTTP.URL+path, token, body)
}

// Call sends body as JSON (none when nil; a Raw body as it is) with token as bearer (none when empty) and returns
// the answer's status and body; a transport error fails the test. An event stream's status is
// its answer: its body, which does not end, is not read.
func Call(t testing.TB, method, url, token string, body any) (int, []byte) {
	t.Helper()
	status, out, err := Request(t.Context(), http.DefaultClient, method, url, token, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, out
}

// CallIn is Call asking for the answer in lang (an Accept-Language value: "en", "fr-FR,fr;q=0.9").
func (s *Server) CallIn(t testing.TB, lang, method, path, token string, body any) (int, []byte) {
	t.Helper()
	status, out, err := request(t.Context(), http.DefaultClient, method, s.HTTP.URL+path, token, lang, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, out
}

// Request is Call for requests that may fail, such as those to a server being killed.
func Request(ctx context.Context, client *http.Client, method, url, token string, body any) (int, []byte, error) {
	return request(ctx, client, method, url, token, "", body)
}

// Raw is a body Call sends as it is, with its content type, instead of as JSON.
type Raw struct {
	ContentType string
	Body        []byte
}

func request(ctx context.Context, client *http.Client, method, url, token, lang string, body any) (int, []byte, error) {
	var rd io.Reader
	contentType := "application/json"
	if raw, ok := body.(Raw); ok {
		rd, contentType = bytes.NewReader(raw.Body), raw.ContentType
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: %w", method, url, err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends an event stream
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		return resp.StatusCode, nil, nil
	}
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: read the answer: %w", method, url, err)
	}
	return resp.StatusCode, out, nil
}

// Object decodes an answer that is a JSON object; any other answer (Markdown minutes, an
// empty body) is {"raw": its text}.
func Object(raw []byte) map[string]any {
	out := map[string]any{}
	if json.Unmarshal(raw, &out) != nil || len(out) == 0 {
		out = map[string]any{"raw": string(raw)}
	}
	return out
}
