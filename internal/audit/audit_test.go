package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/extauthz/extauthz/internal/authz"
)

var t0 = time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)

const tok = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"

func request() *authz.Request {
	return &authz.Request{
		Host: "api.acme.test", Path: "/orders/7?access_token=" + tok, Method: "POST", RequestID: "req-1",
		Headers:       map[string]string{"authorization": "Bearer " + tok},
		ClientAddress: "203.0.113.9",
	}
}

func allow() *authz.Decision {
	return &authz.Decision{Allowed: true, HTTPStatus: 200, Reason: authz.ReasonOK, TenantID: "acme", ProviderID: "main",
		Claims: map[string]any{"sub": "alice", "iss": "https://idp.acme.test/", "jti": "j-1", "email": "alice@acme.test"}}
}

func deny() *authz.Decision {
	return &authz.Decision{HTTPStatus: 401, Reason: authz.ReasonSignatureInvalid, TenantID: "acme", ProviderID: "main"}
}

// readRecords decodes every line of path.
func readRecords(t *testing.T, path string) []Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		var r Record
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func openLog(t *testing.T, ratio float64) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{AllowSampleRatio: ratio, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return l, path
}

func TestRecord_Fields(t *testing.T) {
	l, path := openLog(t, 1)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	l.Record(ctx, request(), allow())
	l.Record(context.Background(), request(), deny())
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []Record{
		{Time: t0, Tenant: "acme", Provider: "main", Decision: "allow", Reason: "ok", Status: 200,
			Sub: "alice", Iss: "https://idp.acme.test/", JTI: "j-1", RequestID: "req-1",
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Method: "POST", Host: "api.acme.test", Path: "/orders/7",
			ClientAddress: "203.0.113.9"},
		// A denied token's claims are the client's word: not written.
		{Time: t0, Tenant: "acme", Provider: "main", Decision: "deny", Reason: "signature_invalid", Status: 401,
			RequestID: "req-1", Method: "POST", Host: "api.acme.test", Path: "/orders/7", ClientAddress: "203.0.113.9"},
	}
	if diff := cmp.Diff(want, readRecords(t, path)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	data, _ := os.ReadFile(path)
	for _, part := range strings.Split(tok, ".") {
		if bytes.Contains(data, []byte(part)) {
			t.Errorf("the audit log holds part of the token: %q", part)
		}
	}
}

func TestRecord_RequestFieldsBounded(t *testing.T) {
	r := request()
	r.Path = "/" + strings.Repeat("p", 10000)
	r.Host = strings.Repeat("h", 10000)
	r.RequestID = strings.Repeat("i", 10000)
	r.Method = strings.Repeat("M", 100)
	r.ClientAddress = strings.Repeat("a", 10000)
	d := allow()
	d.Claims["sub"] = strings.Repeat("s", 10000)
	rec := NewRecord(context.Background(), t0, r, d)
	for name, got := range map[string]struct {
		v   string
		max int
	}{
		"path": {rec.Path, maxPath}, "host": {rec.Host, maxHost}, "request_id": {rec.RequestID, maxID},
		"method": {rec.Method, maxMethod}, "client_address": {rec.ClientAddress, maxAddr}, "sub": {rec.Sub, maxClaim},
	} {
		if len(got.v) != got.max {
			t.Errorf("%s: %d bytes, want cut to %d", name, len(got.v), got.max)
		}
	}
}

func TestRecord_EveryDenialAllowsSampled(t *testing.T) {
	tests := []struct {
		ratio      float64
		wantAllows int
	}{{0, 0}, {1, 50}}
	for _, tt := range tests {
		l, path := openLog(t, tt.ratio)
		for range 50 {
			l.Record(context.Background(), request(), allow())
			l.Record(context.Background(), request(), deny())
		}
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		allows, denials := 0, 0
		for _, r := range readRecords(t, path) {
			if r.Decision == "allow" {
				allows++
			} else {
				denials++
			}
		}
		if allows != tt.wantAllows || denials != 50 {
			t.Errorf("ratio %v: %d allows and %d denials written, want %d and 50", tt.ratio, allows, denials, tt.wantAllows)
		}
	}
	// A ratio in between writes some allows, not all (50 % of 2000: the
	// chance of 0 or 2000 is nil).
	l, path := openLog(t, 0.5)
	for range 2000 {
		l.Record(context.Background(), request(), allow())
	}
	l.Close(context.Background())
	if n := len(readRecords(t, path)); n == 0 || n == 2000 {
		t.Errorf("ratio 0.5: %d of 2000 allows written", n)
	}
}

// blockingWriter holds every Write until release is closed.
type blockingWriter struct {
	entered chan struct{} // a Write has started
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}
func (w *blockingWriter) Close() error { return nil }

func TestRecord_FullBufferDropsWithoutBlocking(t *testing.T) {
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	l := newLog("test", Options{Buffer: 4}, func(string) (io.WriteCloser, error) { return w, nil })
	go l.run(w)
	l.Record(context.Background(), request(), deny())
	<-w.entered // the writer holds one record, stuck in Write
	returned := make(chan struct{})
	go func() {
		for range 10 {
			l.Record(context.Background(), request(), deny())
		}
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("Record blocked on a stuck writer")
	}
	if got := l.Dropped(); got != 6 {
		t.Errorf("dropped %d, want 6 (10 offered, 4 buffered)", got)
	}
	close(w.release)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := l.Written(); got != 5 {
		t.Errorf("written %d, want 5", got)
	}
}

func TestReopen_AfterRotation(t *testing.T) {
	l, path := openLog(t, 1)
	l.Record(context.Background(), request(), deny())
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.Record(context.Background(), request(), allow())
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if old, cur := readRecords(t, rotated), readRecords(t, path); len(old) != 1 || old[0].Decision != "deny" || len(cur) != 1 || cur[0].Decision != "allow" {
		t.Errorf("rotated file %v, new file %v: want the denial before the reopen and the allow after", old, cur)
	}
}

func TestReopen_FailureKeepsTheOldFile(t *testing.T) {
	w := &bytes.Buffer{}
	opens := 0
	l := newLog("x", Options{}, func(string) (io.WriteCloser, error) {
		opens++
		return nil, errors.New("permission denied")
	})
	go l.run(nopCloser{w})
	if err := l.Reopen(context.Background()); err == nil || opens != 1 {
		t.Fatalf("Reopen: %v after %d opens, want the open error", err, opens)
	}
	l.Record(context.Background(), request(), deny())
	l.Close(context.Background())
	if !strings.Contains(w.String(), `"signature_invalid"`) {
		t.Errorf("record not written to the old file after a failed reopen: %q", w.String())
	}
}

func TestOpen_BadPath(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing", "audit.log"), Options{})
	if err == nil || !strings.Contains(err.Error(), "audit.path") {
		t.Errorf("error %v, want one naming audit.path", err)
	}
}

// TestRecord_TraceIDWithTracingOff: without a span in the context the
// record still names the caller's trace, from the gRPC metadata or the
// request's own headers.
func TestRecord_TraceIDWithTracingOff(t *testing.T) {
	const tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	tp := "00-" + tid + "-00f067aa0ba902b7-01"
	tests := []struct {
		name string
		ctx  context.Context
		hdr  map[string]string
		want string
	}{
		{"gRPC metadata", metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", tp)), nil, tid},
		{"request header", context.Background(), map[string]string{"traceparent": tp}, tid},
		{"b3", context.Background(), map[string]string{"b3": tid + "-00f067aa0ba902b7-1"}, tid},
		{"none", context.Background(), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request()
			for k, v := range tt.hdr {
				r.Headers[k] = v
			}
			if got := NewRecord(tt.ctx, t0, r, deny()).TraceID; got != tt.want {
				t.Errorf("trace_id %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRecord_ShadowWouldDenyAlwaysWritten(t *testing.T) {
	l, path := openLog(t, 0) // no plain allow is written
	d := allow()
	d.Requirement, d.WouldDeny = "orders-write", authz.ReasonInsufficientScope
	l.Record(context.Background(), request(), d)
	l.Record(context.Background(), request(), allow())
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := readRecords(t, path)
	if len(recs) != 1 || recs[0].Decision != "allow" || recs[0].WouldDeny != "insufficient_scope" || recs[0].Requirement != "orders-write" {
		t.Errorf("records %+v, want the shadow allow alone, with would_deny and requirement", recs)
	}
}
