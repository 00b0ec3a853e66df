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

func BenchmarkFileAppend(b *testing.B) {
	benchAppend(b, func(b *testing.B) Journal {
		j, err := OpenFile(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { j.Close() })
		return j
	})
}

func BenchmarkRedisAppend(b *testing.B) {
	srv := redistest.StartRedis(b)
	benchAppend(b, func(b *testing.B) Journal {
		return NewRedis(srv.Client(b), b.Name()+":")
	})
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
