package sse

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestNamesAndAwait(t *testing.T) {
	stream := "event: state\ndata: {}\n\n: comment\nevent: bleep\ndata: {\"on\":true}\n\n"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	names := Names(ctx, strings.NewReader(stream))
	if err := Await(ctx, names, "bleep"); err != nil {
		t.Fatal(err)
	}
	if err := Await(ctx, names, "state"); err == nil || !strings.Contains(err.Error(), "ended before") {
		t.Fatalf("awaiting past the end: %v, want the stream's end", err)
	}
	short, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	open := make(chan string) // a stream that says nothing
	if err := Await(short, open, "state"); err == nil {
		t.Fatal("awaiting on a silent stream did not time out")
	}
}
