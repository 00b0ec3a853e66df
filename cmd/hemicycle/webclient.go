package main

import (
	"net/http"

	webclient "github.com/ingeco/hemicycle/web-client"
)

// mountWebClient serves the browser client at "/" (more specific routes win in ServeMux).
func mountWebClient(mux *http.ServeMux) {
	mux.Handle("/", webclient.Handler())
}
