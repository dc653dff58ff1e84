// Package audit writes the decision audit log: one JSON record per
// decision (Record) on a stream of its own, a file or stdout. Every denial
// is written and allows are sampled. Writing never holds up a decision:
// records go through a bounded buffer to one writer goroutine, and when the
// buffer is full a record is dropped and counted, never waited for. The
// file is reopened on demand (SIGHUP, after log rotation moved it).
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/extauthz/extauthz/internal/authz"
)

// DefaultBuffer is how many records wait for the writer before new ones
// are dropped: about a second of denials in a flood, a few MiB at most.
const DefaultBuffer = 8192

// Stdout is the path that names standard output.
const Stdout = "-"

// Options tune a Log. The zero value is usable.
type Options struct {
	// AllowSampleRatio is the share of allows written, in [0, 1]. Every
	// denial is written.
	AllowSampleRatio float64
	Buffer           int              // default DefaultBuffer
	Logger           *slog.Logger     // write and reopen failures; default discard
	Now              func() time.Time // default time.Now
}

// item is what the writer takes: a record, or a reopen request to answer.
type item struct {
	rec    Record
	reopen chan error
}

// Log is an open audit log. It implements authz.Recorder and is safe for
// concurrent use.
type Log struct {
	path    string
	ratio   float64
	log     *slog.Logger
	now     func() time.Time
	queue   chan item
	dropped atomic.Uint64
	written atomic.Uint64

	// open opens path; tests replace it.
	open func(path string) (io.WriteCloser, error)

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

var _ authz.Recorder = (*Log)(nil)

// Open opens path for appending (created 0640 if missing), or standard
// output for "-", and starts the writer.
func Open(path string, opts Options) (*Log, error) {
	l := newLog(path, opts, openFile)
	w, err := l.open(path)
	if err != nil {
		return nil, err
	}
	go l.run(w)
	return l, nil
}

func newLog(path string, opts Options, open func(string) (io.WriteCloser, error)) *Log {
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultBuffer
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Log{
		path:  path,
		ratio: opts.AllowSampleRatio,
		log:   opts.Logger,
		now:   opts.Now,
		queue: make(chan item, opts.Buffer),
		open:  open,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
}

func openFile(path string) (io.WriteCloser, error) {
	if path == Stdout {
		return nopCloser{os.Stdout}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("audit.path: %w", err)
	}
	return f, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// Record implements authz.Recorder: it queues the record of d unless d is
// an allow left out by sampling (never a shadow-mode allow that would
// have been denied). It never blocks: with the buffer full,
// the record is dropped and counted (Dropped).
func (l *Log) Record(ctx context.Context, r *authz.Request, d *authz.Decision) {
	// A shadow-mode allow that enforce mode would deny is written like a
	// denial: it is what onboarding a tenant looks for.
	if d.Allowed && d.WouldDeny == "" && (l.ratio <= 0 || (l.ratio < 1 && rand.Float64() >= l.ratio)) {
		return
	}
	select {
	case l.queue <- item{rec: NewRecord(ctx, l.now(), r, d)}:
	default:
		l.dropped.Add(1)
	}
}

// Dropped returns how many records were dropped because the buffer was
// full (extauthz_audit_dropped_total).
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Written returns how many records were written.
func (l *Log) Written() uint64 { return l.written.Load() }

// Reopen closes the file and opens path again (log rotation moved it),
// after the records queued before the call are written to the old one. It
// waits for the writer, bounded by ctx. On failure the old file stays in
// use.
func (l *Log) Reopen(ctx context.Context) error {
	ack := make(chan error, 1)
	select {
	case l.queue <- item{reopen: ack}:
	case <-l.done:
		return errors.New("audit: log closed")
	case <-ctx.Done():
		return fmt.Errorf("audit: reopen: %w", ctx.Err())
	}
	select {
	case err := <-ack:
		return err
	case <-ctx.Done():
		return fmt.Errorf("audit: reopen: %w", ctx.Err())
	}
}

// Close writes what is queued, bounded by ctx, then closes the file.
// Records offered after Close are dropped.
func (l *Log) Close(ctx context.Context) error {
	l.closeOnce.Do(func() { close(l.stop) })
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit: close: %w", ctx.Err())
	}
}

// run is the writer: the only goroutine that touches the file.
func (l *Log) run(w io.WriteCloser) {
	defer close(l.done)
	failing := false
	write := func(rec Record) {
		line, err := json.Marshal(rec)
		if err == nil {
			_, err = w.Write(append(line, '\n'))
		}
		switch {
		case err != nil && !failing:
			// Once per failing streak: a full disk must not flood the log.
			l.log.Error("audit record not written", "path", l.path, "error", err)
			failing = true
		case err == nil:
			failing = false
			l.written.Add(1)
		}
	}
	handle := func(it item) {
		if it.reopen == nil {
			write(it.rec)
			return
		}
		nw, err := l.open(l.path)
		if err != nil {
			l.log.Error("audit log not reopened; writing to the old file", "path", l.path, "error", err)
			it.reopen <- err
			return
		}
		_ = w.Close()
		w = nw
		it.reopen <- nil
	}
	for {
		select {
		case it := <-l.queue:
			handle(it)
		case <-l.stop:
			for {
				select {
				case it := <-l.queue:
					handle(it)
				default:
					_ = w.Close()
					return
				}
			}
		}
	}
}
