// Package sse reads Server-Sent Events streams in tests: the names of the events, in order.
package sse

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
)

// Names sends the name of each event read from r, until r ends (the channel is then closed) or
// ctx does.
func Names(ctx context.Context, r io.Reader) <-chan string {
	names := make(chan string, 64)
	go func() {
		defer close(names)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				select {
				case names <- name:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return names
}

// Await reads names until want comes; it fails if the stream ends first or ctx ends.
func Await(ctx context.Context, names <-chan string, want string) error {
	for {
		select {
		case got, ok := <-names:
			if !ok {
				return fmt.Errorf("the event stream ended before a %q event", want)
			}
			if got == want {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("no %q event: %w", want, ctx.Err())
		}
	}
}
