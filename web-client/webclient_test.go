package webclient

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target string, header map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return b
}

func staticFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(staticFiles, "static/"+name)
	if err != nil {
		t.Fatalf("reading embedded %s: %v", name, err)
	}
	return b
}

func TestPageRoutesServeTheClient(t *testing.T) {
	h := Handler()
	index := staticFile(t, "index.html")
	for _, target := range []string{"/", "/join", "/join?token=abc.def.ghi", "/index.html"} {
		res := get(t, h, http.MethodGet, target, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d, want 200", target, res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", target, ct)
		}
		if got := body(t, res); !bytes.Equal(got, index) {
			t.Errorf("GET %s: body is not index.html", target)
		}
		if rp := res.Header.Get("Referrer-Policy"); rp != "no-referrer" {
			t.Errorf("GET %s: Referrer-Policy %q; invitation tokens could leak", target, rp)
		}
	}
}

// TestClerkPageIsServed: /prepare shows the clerk's page, with the same headers as the client.
func TestClerkPageIsServed(t *testing.T) {
	res := get(t, Handler(), http.MethodGet, "/prepare?token=abc.def.ghi", nil)
	if res.StatusCode != http.StatusOK || !bytes.Equal(body(t, res), staticFile(t, "prepare.html")) {
		t.Fatalf("GET /prepare: status %d, or not prepare.html", res.StatusCode)
	}
	if rp := res.Header.Get("Referrer-Policy"); rp != "no-referrer" || res.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("GET /prepare: Referrer-Policy %q, CSP %q", rp, res.Header.Get("Content-Security-Policy"))
	}
}

func TestContentSecurityPolicyAllowsOnlyOwnOrigin(t *testing.T) {
	// httptest requests are for host example.com.
	res := get(t, Handler(), http.MethodGet, "/", nil)
	csp := res.Header.Get("Content-Security-Policy")
	if csp == "" {
		t.Fatal("no Content-Security-Policy header")
	}
	directives := map[string][]string{}
	for _, d := range strings.Split(csp, ";") {
		fields := strings.Fields(d)
		if len(fields) > 0 {
			directives[fields[0]] = fields[1:]
		}
	}
	if got := directives["default-src"]; !slices.Equal(got, []string{"'none'"}) {
		t.Errorf("default-src %v, want 'none'", got)
	}
	for name, sources := range directives {
		for _, s := range sources {
			switch {
			case s == "'self'", s == "'none'", s == "data:", s == "blob:", s == "mediastream:":
			case name == "connect-src" && (s == "ws://example.com" || s == "wss://example.com"):
			default:
				t.Errorf("directive %s allows %q: only the page's own origin may be reached", name, s)
			}
		}
	}
	for _, want := range []string{"script-src", "connect-src", "style-src", "frame-ancestors"} {
		if _, ok := directives[want]; !ok {
			t.Errorf("CSP lacks %s", want)
		}
	}
	if !slices.Contains(directives["connect-src"], "wss://example.com") {
		t.Errorf("connect-src %v does not name the page's own host for WebSockets", directives["connect-src"])
	}
}

// TestHostileHostIsNotEchoedIntoThePolicy: the Host header is the client's to choose; one that
// could add a source or a directive must leave only 'self'.
func TestHostileHostIsNotEchoedIntoThePolicy(t *testing.T) {
	for _, host := range []string{"evil.example; script-src *", "a b", "x'", "[::1]:7880 https://cdn.example"} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		Handler().ServeHTTP(rec, req)
		csp := rec.Header().Get("Content-Security-Policy")
		if strings.Contains(csp, "evil") || strings.Contains(csp, "cdn") || strings.Contains(csp, "ws://") {
			t.Errorf("Host %q leaked into the policy: %s", host, csp)
		}
	}
	for _, host := range []string{"127.0.0.1:7880", "[::1]:7880", "conseil.example.fr"} {
		if got := contentSecurityPolicy(host); !strings.Contains(got, "wss://"+host+";") {
			t.Errorf("host %q not named in connect-src: %s", host, got)
		}
	}
}

func TestAssetsHaveTypesAndRevalidate(t *testing.T) {
	h := Handler()
	cases := map[string]string{
		"/js/main.js":                    "text/javascript; charset=utf-8",
		"/vendor/livekit-client.esm.mjs": "text/javascript; charset=utf-8",
		"/app.css":                       "text/css; charset=utf-8",
		"/i18n/fr.js":                    "text/javascript; charset=utf-8",
		"/favicon.svg":                   "image/svg+xml",
	}
	for target, wantType := range cases {
		res := get(t, h, http.MethodGet, target, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", target, res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); ct != wantType {
			t.Errorf("GET %s: Content-Type %q, want %q", target, ct, wantType)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", target, cc)
		}
		etag := res.Header.Get("ETag")
		if etag == "" {
			t.Fatalf("GET %s: no ETag", target)
		}
		again := get(t, h, http.MethodGet, target, map[string]string{"If-None-Match": etag})
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with matching If-None-Match: status %d, want 304", target, again.StatusCode)
		}
	}
}

func TestGzipIsServedWhenAcceptedAndDecodesToTheFile(t *testing.T) {
	h := Handler()
	const target = "/vendor/livekit-client.esm.mjs"
	want := staticFile(t, "vendor/livekit-client.esm.mjs")

	plain := get(t, h, http.MethodGet, target, nil)
	if enc := plain.Header.Get("Content-Encoding"); enc != "" {
		t.Fatalf("without Accept-Encoding got Content-Encoding %q", enc)
	}
	if !bytes.Equal(body(t, plain), want) {
		t.Fatal("identity body differs from the embedded file")
	}

	zipped := get(t, h, http.MethodGet, target, map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
	if enc := zipped.Header.Get("Content-Encoding"); enc != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", enc)
	}
	if zipped.Header.Get("ETag") == plain.Header.Get("ETag") {
		t.Error("gzip and identity representations share an ETag")
	}
	zr, err := gzip.NewReader(bytes.NewReader(body(t, zipped)))
	if err != nil {
		t.Fatalf("gzip body: %v", err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("gunzipped body differs from the embedded file")
	}

	refused := get(t, h, http.MethodGet, target, map[string]string{"Accept-Encoding": "gzip;q=0"})
	if enc := refused.Header.Get("Content-Encoding"); enc != "" {
		t.Errorf("gzip;q=0 still got Content-Encoding %q", enc)
	}
}

// TestConcurrentFirstRequests: the gzip form is made lazily; many first requests at once must
// all get the same complete body (the race detector watches the sharing).
func TestConcurrentFirstRequests(t *testing.T) {
	h := Handler()
	want := staticFile(t, "app.css")
	const n = 8
	results := make(chan []byte, n)
	for range n {
		go func() {
			req := httptest.NewRequest(http.MethodGet, "/app.css", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			zr, err := gzip.NewReader(rec.Body)
			if err != nil {
				results <- nil
				return
			}
			b, _ := io.ReadAll(zr)
			results <- b
		}()
	}
	for range n {
		if got := <-results; !bytes.Equal(got, want) {
			t.Fatal("a concurrent gzip response did not decode to the file")
		}
	}
}

func TestUnknownPathsAndMethodsAreRefused(t *testing.T) {
	h := Handler()
	for _, target := range []string{"/nope", "/js/", "/vendor", "/join/extra", "/../webclient.go"} {
		if res := get(t, h, http.MethodGet, target, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", target, res.StatusCode)
		}
	}
	res := get(t, h, http.MethodPost, "/", nil)
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", res.StatusCode)
	}
	if res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: Allow %q", res.Header.Get("Allow"))
	}
	head := get(t, h, http.MethodHead, "/", nil)
	if head.StatusCode != http.StatusOK || len(body(t, head)) != 0 {
		t.Errorf("HEAD /: status %d with a body", head.StatusCode)
	}
}

// TestVendoredSDKMatchesItsPin checks that the vendored bundle is the pinned release, byte for
// byte as refresh-vendor.sh recorded it; the browser tests compare it with npm's copy as well.
func TestVendoredSDKMatchesItsPin(t *testing.T) {
	version := strings.TrimSpace(string(staticFile(t, "vendor/VERSION")))
	if !regexp.MustCompile(`^2\.\d+\.\d+$`).MatchString(version) {
		t.Fatalf("vendor/VERSION %q is not an exact 2.x version", version)
	}
	bundle := staticFile(t, "vendor/livekit-client.esm.mjs")
	m := regexp.MustCompile(`var version\$1 = "([^"]+)"`).FindSubmatch(bundle)
	if m == nil {
		t.Fatal("cannot find the SDK's version string in the vendored bundle")
	}
	if string(m[1]) != version {
		t.Fatalf("vendored bundle is livekit-client %s, VERSION pins %s", m[1], version)
	}
	sum := sha256.Sum256(bundle)
	sums := string(staticFile(t, "vendor/SHA256SUMS"))
	want := hex.EncodeToString(sum[:]) + "  livekit-client.esm.mjs"
	if strings.TrimSpace(sums) != want {
		t.Fatalf("SHA256SUMS says %q, the bundle hashes to %q", strings.TrimSpace(sums), want)
	}
	if !bytes.Contains(staticFile(t, "vendor/LICENSE.livekit-client"), []byte("Apache License")) {
		t.Fatal("the SDK's licence is missing")
	}
}

var (
	importRe = regexp.MustCompile(`(?m)^\s*import\s+(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]`)
	attrRe   = regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	urlRe    = regexp.MustCompile(`https?://[^\s'"<>)]+`)
)

// TestModuleGraphResolves follows every import of our modules and every src/href of the pages
// (the client's and the public watch page), so a renamed file breaks this test rather than a
// page.
func TestModuleGraphResolves(t *testing.T) {
	h := Handler()
	seen := map[string]bool{}
	queue := []string{}
	for _, page := range []string{"index.html", "watch.html", "prepare.html"} {
		for _, m := range attrRe.FindAllSubmatch(staticFile(t, page), -1) {
			ref := string(m[1])
			if strings.HasPrefix(ref, "#") {
				continue
			}
			queue = append(queue, ref)
		}
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		res := get(t, h, http.MethodGet, p, nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s is referenced but answers %d", p, res.StatusCode)
			continue
		}
		if !strings.HasSuffix(p, ".js") {
			continue // the vendored bundle has no imports; CSS and icons none either
		}
		for _, m := range importRe.FindAllSubmatch(body(t, res), -1) {
			queue = append(queue, path.Join(path.Dir(p), string(m[1])))
		}
	}
	for _, must := range []string{"/js/main.js", "/js/room.js", "/js/lobby.js", "/watch.js", "/js/i18n.js", "/i18n/fr.js", "/i18n/en.js", "/vendor/livekit-client.esm.mjs", "/js/prepare.js", "/prepare.css"} {
		if !seen[must] {
			t.Errorf("%s is not reachable from the pages", must)
		}
	}
}

// TestNoThirdPartyReferences scans our own files (the SDK bundle only mentions URLs in comments)
// for addresses that a browser could fetch.
func TestNoThirdPartyReferences(t *testing.T) {
	allowed := map[string]bool{"http://www.w3.org/2000/svg": true} // an XML namespace, never fetched
	err := fs.WalkDir(staticFiles, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(name, "static/vendor/") {
			return err
		}
		b, err := fs.ReadFile(staticFiles, name)
		if err != nil {
			return err
		}
		for _, u := range urlRe.FindAll(b, -1) {
			if !allowed[string(u)] {
				t.Errorf("%s refers to %s", name, u)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var (
	keyRe         = regexp.MustCompile(`(?m)^\s*'([a-zA-Z0-9_.]+)':\s*'((?:[^'\\]|\\.)*)',?\s*$`)
	placeholderRe = regexp.MustCompile(`\{(\w+)\}`)
)

func catalog(t *testing.T, lang string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range keyRe.FindAllSubmatch(staticFile(t, "i18n/"+lang+".js"), -1) {
		if _, dup := out[string(m[1])]; dup {
			t.Errorf("%s.js defines %s twice", lang, m[1])
		}
		out[string(m[1])] = string(m[2])
	}
	if len(out) < 50 {
		t.Fatalf("%s.js: parsed only %d strings; is the file format still one 'key': 'text' per line?", lang, len(out))
	}
	return out
}

func placeholders(s string) []string {
	var out []string
	for _, m := range placeholderRe.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return out
}

// TestLanguagesHaveTheSameStrings: every message exists in French and English with the same
// parameters (i18n_test.go checks the keys the pages use).
func TestLanguagesHaveTheSameStrings(t *testing.T) {
	fr, en := catalog(t, "fr"), catalog(t, "en")
	for k, v := range fr {
		ev, ok := en[k]
		if !ok {
			t.Errorf("en.js lacks %s", k)
			continue
		}
		if !slices.Equal(placeholders(v), placeholders(ev)) {
			t.Errorf("%s: French parameters %v, English %v", k, placeholders(v), placeholders(ev))
		}
	}
	for k := range en {
		if _, ok := fr[k]; !ok {
			t.Errorf("fr.js lacks %s", k)
		}
	}
}
