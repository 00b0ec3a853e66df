// Command pocketsphinx-engine serves the tests' PocketSphinx adapter on its own, to try speech
// recognition by hand against a development server:
//
//	go run ./test/speech/pocketsphinx-engine -addr 127.0.0.1:2700 &
//	HEMICYCLE_SPEECH_ENGINE_URL=ws://127.0.0.1:2700/ go run ./cmd/hemicycle serve --dev
//
// then, as the chair, POST /api/rooms/{room}/speech/start. It recognises English only
// (pocketsphinx-en-us), and not well without a grammar: it is the tests' engine, not one to
// caption a sitting with (docs/speech.md says how to plug in Vosk or whisper.cpp).
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/ingeco/hemicycle/test/speech"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2700", "address to listen on (keep it on loopback: the protocol has no authentication)")
	grammar := flag.String("grammar", "", "JSGF grammar file to listen with (test/speech/words.gram); empty: the general English model")
	flag.Parse()
	fmt.Fprintf(os.Stderr, "PocketSphinx engine on ws://%s/\n", *addr)
	srv := &http.Server{Addr: *addr, Handler: speech.NewEngine(*grammar), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
