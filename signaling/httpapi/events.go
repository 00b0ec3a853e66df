package httpapi

import (
	"fmt"
	"net/http"
	"time"
)

// keepalive is how often an idle event stream sends a comment, so that proxies keep it open.
const keepalive = 15 * time.Second

// ServeEvents streams Server-Sent Events: first, then each message from updates, named by
// name, until the client leaves or stop closes.
func ServeEvents(w http.ResponseWriter, r *http.Request, stop <-chan struct{}, updates <-chan []byte, name func([]byte) string, first ...[]byte) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		WriteError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	for _, msg := range first {
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name(msg), msg)
	}
	flusher.Flush()
	tick := time.NewTicker(keepalive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-stop:
			return
		case msg := <-updates:
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name(msg), msg)
		case <-tick.C:
			fmt.Fprint(w, ": keepalive\n\n")
		}
		flusher.Flush()
	}
}
