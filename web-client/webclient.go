// Package webclient serves Hemicycle's browser client: plain HTML, CSS and ES modules embedded in
// the binary, with the livekit-client SDK vendored under static/vendor, so that a server runs a
// working client without npm or any build step.
package webclient

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ingeco/hemicycle/signaling/httpapi"
)

//go:embed static
var staticFiles embed.FS

// cspBefore and cspAfter frame the Content-Security-Policy: the page talks to its own origin only,
// so no CDN, font, analytics or other third-party origin can be loaded or contacted, and no
// inline script or style can run. connect-src names the page's own host for ws:/wss: as well,
// because browsers that predate CSP level 3 do not count a WebSocket to the same host as 'self'.
const (
	cspBefore = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
		"media-src 'self' blob: mediastream:; connect-src 'self'"
	cspAfter = "; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

// hostRe is what a Host header may hold to be repeated in the policy: a name or address and a
// port, nothing that could end a source list or start a directive.
var hostRe = regexp.MustCompile(`^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)

func contentSecurityPolicy(host string) string {
	if !hostRe.MatchString(host) {
		return cspBefore + cspAfter
	}
	return cspBefore + " ws://" + host + " wss://" + host + cspAfter
}

// pages are the page addresses and the file each shows: the single-page client (which picks
// its screen from the address itself) and the clerk's pages.
var pages = map[string]string{"/": "/index.html", "/join": "/index.html", "/index.html": "/index.html", "/prepare": "/prepare.html"}

// minGzipSize is the size under which compressing a file saves too little to be worth it.
const minGzipSize = 1024

// asset is one embedded file prepared for serving.
type asset struct {
	name        string
	contentType string
	etag        string // of the identity encoding; the gzip one is distinct, as HTTP requires
	body        []byte

	// The gzip form is made on first request rather than at start-up, where compressing the
	// SDK bundle would cost the server about 150 ms before it could listen.
	gzipOnce sync.Once
	gzipped  []byte // nil when compression does not pay or failed
}

type handler struct {
	assets map[string]*asset // by URL path, e.g. "/js/main.js"
}

// Routes are the web client's rows of the server's route table: every page and file at "/",
// and the watch page of every room at /watch/{room} (the same file for every room, which it
// reads from the address).
func Routes() []httpapi.Route {
	web := Handler()
	watch := func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/watch.html"
		web.ServeHTTP(w, r2)
	}
	open := httpapi.Anyone("static files")
	return []httpapi.Route{
		{Pattern: "/", Access: open, Handler: web.ServeHTTP},
		{Method: "GET", Pattern: "/watch/{room}", Access: open, Handler: watch},
	}
}

// Handler returns the HTTP handler for the web client, to be mounted at "/" after the server's own
// routes (/rtc, /api, /twirp). It serves the client page at "/" and "/join" (invitation links are
// /join?token=… or /?invitation=CODE), the clerk's pages at /prepare, and its assets by path;
// anything else is 404. Every response carries a Content-Security-Policy that forbids
// third-party origins; assets are revalidated on each load by ETag, so an upgraded binary is
// picked up at once while unchanged files cost a 304.
func Handler() http.Handler {
	h, err := newHandler(staticFiles, "static")
	if err != nil {
		// The files are embedded at build time, so this can only be a programming error.
		panic(fmt.Sprintf("webclient: preparing embedded files: %v", err))
	}
	return h
}

func newHandler(fsys fs.FS, root string) (*handler, error) {
	sub, err := fs.Sub(fsys, root)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", root, err)
	}
	h := &handler{assets: map[string]*asset{}}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		h.assets["/"+name] = prepare(name, body)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walking %s: %w", root, err)
	}
	if h.assets["/index.html"] == nil {
		return nil, fmt.Errorf("%s has no index.html", root)
	}
	return h, nil
}

func prepare(name string, body []byte) *asset {
	sum := sha256.Sum256(body)
	a := &asset{
		name:        name,
		contentType: contentType(name),
		etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
		body:        body,
	}
	return a
}

// gzipBody returns the asset compressed, or nil when it should be sent as is.
func (a *asset) gzipBody() []byte {
	a.gzipOnce.Do(func() {
		if len(a.body) < minGzipSize || !compressible(a.contentType) {
			return
		}
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return // a constant valid level: cannot happen
		}
		// Writes to a bytes.Buffer cannot fail; a short result is checked below.
		_, _ = zw.Write(a.body)
		if zw.Close() == nil && buf.Len() < len(a.body) {
			a.gzipped = buf.Bytes()
		}
	})
	return a.gzipped
}

// contentType maps the extensions we ship; .mjs is spelled out because some systems' MIME tables
// lack it, and browsers refuse to run a module served with a non-JavaScript type.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".json":
		return "application/json"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	case "", ".txt":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func compressible(contentType string) bool {
	return strings.HasPrefix(contentType, "text/") ||
		strings.HasPrefix(contentType, "application/json") ||
		strings.HasPrefix(contentType, "image/svg")
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", contentSecurityPolicy(r.Host))
	hdr.Set("X-Content-Type-Options", "nosniff")
	// Invitation links carry a token in the query string: never hand it on as a referrer.
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self), geolocation=()")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "the web client only answers GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	urlPath := r.URL.Path
	if page, ok := pages[urlPath]; ok {
		urlPath = page
	}
	a := h.assets[urlPath]
	if a == nil {
		http.NotFound(w, r)
		return
	}

	hdr.Set("Content-Type", a.contentType)
	hdr.Set("ETag", a.etag)
	// no-cache means "revalidate before use", not "do not store": the ETag turns repeat loads into
	// 304s while a new binary's files are seen immediately.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Add("Vary", "Accept-Encoding")

	body := a.body
	if acceptsGzip(r) {
		if z := a.gzipBody(); z != nil {
			hdr.Set("Content-Encoding", "gzip")
			hdr.Set("ETag", gzipETag(a.etag))
			body = z
		}
	}
	// ServeContent answers If-None-Match and Range; a zero modtime keeps Last-Modified out.
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(body))
}

func gzipETag(etag string) string {
	return strings.TrimSuffix(etag, `"`) + `-gz"`
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip, honouring an explicit
// "gzip;q=0" refusal.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "q") {
				q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				return err == nil && q > 0
			}
		}
		return true
	}
	return false
}
