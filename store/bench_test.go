package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ingeco/hemicycle/store/redistest"
)

// A ballot-sized payload, as the council package is expected to append.
var benchPayload = json.RawMessage(`{"vote":"v-3","seat":"27","for_seat":"27","choice":"for","mode":"electronic","actor":{"identity":"m-27","role":"member"}}`)

// benchAppend measures durable appends: one journal written by one goroutine, the
// same journal by many (serialised), and one journal per goroutine.
func benchAppend(b *testing.B, open func(b *testing.B) Journal) {
	ctx := context.Background()
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	}
	b.Run("OneJournal", func(b *testing.B) {
		j := open(b)
		for i := 0; b.Loop(); i++ {
			if _, err := j.Append(ctx, "bench", 0, at(i), "ballot.cast", benchPayload); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("OneJournalParallel", func(b *testing.B) {
		j := open(b)
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := j.Append(ctx, "bench", 0, at(i), "ballot.cast", benchPayload); err != nil {
					b.Error(err)
					return
				}
			}
		})
		report(b)
	})
	b.Run("JournalPerGoroutine", func(b *testing.B) {
		j := open(b)
		var n atomic.Int64
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			name := fmt.Sprintf("bench-%d", n.Add(1))
			for i := 0; pb.Next(); i++ {
				if _, err := j.Append(ctx, name, 0, at(i), "ballot.cast", benchPayload); err != nil {
					b.Error(err)
					return
				}
			}
		})
		report(b)
	})
}

// benchRing is a key ring for the signed variants.
func benchRing(b *testing.B) *Keyring {
	ring, err := NewKeyring(at(0))
	if err != nil {
		b.Fatal(err)
	}
	return ring
}

func BenchmarkFileAppend(b *testing.B)       { benchFileAppend(b) }
func BenchmarkFileAppendSigned(b *testing.B) { benchFileAppend(b, WithSigner(benchRing(b))) }

func benchFileAppend(b *testing.B, opts ...Option) {
	benchAppend(b, func(b *testing.B) Journal {
		j, err := OpenFile(b.TempDir(), opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { j.Close() })
		return j
	})
}

func BenchmarkRedisAppend(b *testing.B)       { benchRedisAppend(b) }
func BenchmarkRedisAppendSigned(b *testing.B) { benchRedisAppend(b, WithSigner(benchRing(b))) }

func benchRedisAppend(b *testing.B, opts ...Option) {
	srv := redistest.StartRedis(b)
	benchAppend(b, func(b *testing.B) Journal {
		return NewRedis(srv.Client(b), b.Name()+":", opts...)
	})
}

// BenchmarkNewEntry measures what an append computes before any I/O: the hash, and the
// signature when the store signs.
func BenchmarkNewEntry(b *testing.B) {
	for _, v := range []struct {
		name string
		ring *Keyring
	}{{"Unsigned", nil}, {"Signed", benchRing(b)}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			prev := ""
			for i := 0; b.Loop(); i++ {
				prev = newEntry(v.ring, "bench", uint64(i), prev, at(i), "ballot.cast", benchPayload).Hash
			}
		})
	}
}

// BenchmarkReadVerify measures replaying a 1000-entry journal: read and check.
func BenchmarkReadVerify(b *testing.B) {
	ctx := context.Background()
	j, err := OpenFile(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	for i := range 1000 {
		if _, err := j.Append(ctx, "bench", 0, at(i), "ballot.cast", benchPayload); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		es, err := j.Read(ctx, "bench", 1)
		if err != nil || len(es) != 1000 {
			b.Fatal(len(es), err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "entries/s")
}
