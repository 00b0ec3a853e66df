package main

import (
	"net/http"

	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/httpapi"
	webclient "github.com/ingeco/hemicycle/web-client"
)

// binaryRoutes are the binary's rows of the route table, beside the signalling server's own:
// the web client, its configuration, the development token form, health and metrics.
func binaryRoutes(cfg Config, sig *signaling.Server, wsURL string) []httpapi.Route {
	rows := []httpapi.Route{
		{Method: "GET", Pattern: "/api/client-config", Access: httpapi.Anyone("what the web client needs to start"),
			Handler: func(w http.ResponseWriter, _ *http.Request) {
				httpapi.WriteJSON(w, http.StatusOK, map[string]any{"dev": cfg.dev, "url": wsURL, "privacy": cfg.Privacy})
			}},
		{Method: "GET", Pattern: "/healthz", Access: httpapi.Anyone("says ok"),
			Handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }},
		// Like /healthz, /metrics carries no token check: expose the HTTP port to the monitoring
		// network only, or filter /metrics at the reverse proxy, since room names appear in the
		// quorum labels.
		{Method: "GET", Pattern: "/metrics", Access: httpapi.Anyone("for the monitoring network"),
			Handler: signaling.NewMetrics(sig).Handler().ServeHTTP},
	}
	if cfg.dev {
		rows = append(rows, httpapi.Route{Method: "POST", Pattern: "/api/dev/token", Access: httpapi.Anyone("development server only"),
			Handler: devTokenHandler(cfg, wsURL)})
	}
	return append(rows, webclient.Routes()...)
}
