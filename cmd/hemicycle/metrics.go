package main

import (
	"net/http"

	"github.com/ingeco/hemicycle/signaling"
)

// mountMetrics serves Prometheus metrics at /metrics: rooms, participants, tracks, media
// counters, join times and quorum state, plus the Go runtime and the process. Like /healthz it
// carries no token check: expose the HTTP port to the monitoring network only, or filter
// /metrics at the reverse proxy, since room names appear in the quorum labels.
func mountMetrics(mux *http.ServeMux, sig *signaling.Server) {
	mux.Handle("GET /metrics", signaling.NewMetrics(sig).Handler())
}
