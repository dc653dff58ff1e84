package audit

import (
	"context"
	"io"
	"testing"
)

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Close() error                { return nil }

// BenchmarkRecord is what the audit log adds to a decision on the
// decision's goroutine (building the record, queueing it); the JSON
// encoding and the write happen on the writer goroutine.
func BenchmarkRecord(b *testing.B) {
	for _, c := range []struct {
		name  string
		ratio float64
	}{{"allow-written", 1}, {"allow-sampled-out", 0}} {
		l := newLog("bench", Options{AllowSampleRatio: c.ratio}, func(string) (io.WriteCloser, error) { return discard{}, nil })
		go l.run(discard{})
		r, d := request(), allow()
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l.Record(context.Background(), r, d)
			}
		})
		_ = l.Close(context.Background())
	}
}
