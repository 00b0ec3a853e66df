package httpapi

import (
	"encoding/json"
	"net/http"
)

// Error is a refusal with its HTTP status; its text is shown to the person who asked.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// WriteError answers {"error": msg} with the status.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, map[string]string{"error": msg})
}

// Fail writes e.
func Fail(w http.ResponseWriter, e *Error) { WriteError(w, e.Status, e.Msg) }

// WriteJSON answers v as JSON with the status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Headers sets what every answer of the server carries. CORS is open: tokens, not cookies,
// authorise every call, and LiveKit's SDKs and players (HLS) run on other origins; without it
// the browser SDK sees a failed fetch instead of a 404 and never falls back to /rtc.
func Headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Twirp-Version")
		h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, PATCH, OPTIONS")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
