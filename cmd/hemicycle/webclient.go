package main

import (
	"net/http"

	webclient "github.com/ingeco/hemicycle/web-client"
)

// mountWebClient serves the browser client at "/" (more specific routes win in ServeMux).
func mountWebClient(mux *http.ServeMux) {
	web := webclient.Handler()
	mux.Handle("/", web)
	// The public page of a room's programme: the same file for every room, which it reads
	// from the address.
	mux.HandleFunc("GET /watch/{room}", func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/watch.html"
		web.ServeHTTP(w, r2)
	})
}
