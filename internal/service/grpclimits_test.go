package service

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/extauthz/extauthz/internal/checkclient"
	"github.com/extauthz/extauthz/internal/demo"
	"github.com/extauthz/extauthz/internal/tenants"
)

// defaultLimits are the limits of a configuration that sets none.
var defaultLimits = tenants.Limits{
	MaxTokenBytes:         tenants.DefaultMaxTokenBytes,
	MaxRequestHeaderBytes: tenants.DefaultMaxRequestHeaderBytes,
	MaxConnections:        tenants.DefaultMaxConnections,
	MaxConcurrentStreams:  tenants.DefaultMaxConcurrentStreams,
}

// largestCheckRequest is the largest CheckRequest the limits allow: a
// token of limits.max_token_bytes, and headers (counted as Envoy counts
// them, name and value) filling limits.max_request_header_bytes, with the
// path and host repeated in their own fields as Envoy does.
func largestCheckRequest(t *testing.T, l tenants.Limits) *authv3.CheckRequest {
	t.Helper()
	token := strings.Repeat("a", l.MaxTokenBytes)
	req := checkclient.Request{Host: demo.Host, Path: "/", Method: "GET", Token: token}.CheckRequest()
	h := req.GetAttributes().GetRequest().GetHttp()
	used := 0
	for k, v := range h.Headers {
		used += len(k) + len(v)
	}
	used -= len(":path") + len(h.Headers[":path"])
	pad := l.MaxRequestHeaderBytes - used - len(":path") - 1
	if pad < 0 {
		t.Fatalf("the token alone (%d bytes of headers) exceeds the header bound %d", used, l.MaxRequestHeaderBytes)
	}
	h.Path = "/" + strings.Repeat("p", pad)
	h.Headers[":path"] = h.Path
	total := 0
	for k, v := range h.Headers {
		total += len(k) + len(v)
	}
	if total != l.MaxRequestHeaderBytes {
		t.Fatalf("headers are %d bytes, want %d", total, l.MaxRequestHeaderBytes)
	}
	return req
}

// TestGRPC_MessageBoundFromLimits: the largest CheckRequest the configured
// limits allow is decided; one a byte over MaxCheckRequestBytes is refused
// with RESOURCE_EXHAUSTED before it is decoded, and that bound is not much
// more than the largest request (at most twice the headers plus 8 KiB).
func TestGRPC_MessageBoundFromLimits(t *testing.T) {
	for _, l := range []tenants.Limits{
		defaultLimits,
		{MaxTokenBytes: 64 << 10, MaxRequestHeaderBytes: 96 << 10},
	} {
		t.Run(strconv.Itoa(l.MaxRequestHeaderBytes), func(t *testing.T) {
			f := newFixture(t)
			f.write(t, "limits: {max_token_bytes: "+strconv.Itoa(l.MaxTokenBytes)+", max_request_header_bytes: "+strconv.Itoa(l.MaxRequestHeaderBytes)+"}\n")
			r := runService(t, Options{ConfigPath: f.cfgPath, DrainDelay: -1})
			bound := MaxCheckRequestBytes(l)
			// The largest with no token: the path takes every header byte,
			// and Envoy repeats it in its own field.
			pathOnly := largestCheckRequest(t, tenants.Limits{MaxRequestHeaderBytes: l.MaxRequestHeaderBytes})
			t.Logf("a CheckRequest whose path fills the headers: %d bytes", proto.Size(pathOnly))
			if s := proto.Size(pathOnly); s > bound || s < bound*85/100 {
				t.Fatalf("a CheckRequest whose path fills the headers is %d bytes; the bound %d should fit it closely", s, bound)
			}
			largest := largestCheckRequest(t, l)
			size := proto.Size(largest)
			if size > bound {
				t.Fatalf("the largest allowed CheckRequest is %d bytes, over the bound %d", size, bound)
			}
			t.Logf("largest allowed CheckRequest %d bytes, bound %d bytes", size, bound)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := r.authz.Check(ctx, largest)
			if err != nil {
				t.Fatalf("the largest allowed CheckRequest was refused: %v", err)
			}
			if resp.GetStatus().GetCode() == 0 {
				t.Fatal("a made-up token was allowed")
			}
			if _, err := r.authz.Check(ctx, pathOnly); err != nil {
				t.Fatalf("the CheckRequest whose path fills the headers was refused: %v", err)
			}

			// One byte over the bound: a padding header sized to make it so.
			over := proto.Clone(largest).(*authv3.CheckRequest)
			hs := over.GetAttributes().GetRequest().GetHttp().Headers
			for n := bound - size; ; n++ {
				hs["x-pad"] = strings.Repeat("x", n)
				if s := proto.Size(over); s == bound+1 {
					break
				} else if s > bound+1 {
					n -= 2 // a length prefix grew by a byte; step back
				}
			}
			_, err = r.authz.Check(ctx, over)
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("a CheckRequest of %d bytes (bound %d): %v, want RESOURCE_EXHAUSTED", proto.Size(over), bound, err)
			}
		})
	}
}

// deploymentMemoryLimit reads limits.memory of the shipped Deployment.
func deploymentMemoryLimit(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("../../deploy/kubernetes/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`limits:\s*\n\s*memory:\s*(\d+)Mi\b`).FindSubmatch(b)
	if m == nil {
		t.Fatal("deployment.yaml has no limits.memory in Mi")
	}
	n, err := strconv.ParseUint(string(m[1]), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n << 20
}

// inUse is the memory the Go runtime holds for live objects and stacks.
func inUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// attackConn is one HTTP/2 connection of a client that half-sends
// maximal Checks, written frame by frame: each stream announces a message
// of msgLen bytes and sends all of it but the last byte, within the flow
// control windows the server grants, then holds.
type attackConn struct {
	c   net.Conn
	fr  *http2.Framer
	wmu sync.Mutex // serialises writes to fr

	mu         sync.Mutex
	changed    *sync.Cond
	connWindow int64
	windows    map[uint32]int64 // stream → send window
	refused    map[uint32]bool
	initWindow int64 // the server's SETTINGS_INITIAL_WINDOW_SIZE
	settings   bool  // the server's SETTINGS arrived
	pingAck    chan struct{}
	readErr    error
}

func dialAttack(t *testing.T, addr string) (*attackConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	a := &attackConn{c: c, fr: http2.NewFramer(c, c), connWindow: 65535, initWindow: 65535, windows: map[uint32]int64{}, refused: map[uint32]bool{}, pingAck: make(chan struct{}, 1)}
	a.changed = sync.NewCond(&a.mu)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		return nil, err
	}
	if err := a.fr.WriteSettings(); err != nil {
		return nil, err
	}
	go a.read()
	return a, nil
}

func (a *attackConn) read() {
	for {
		f, err := a.fr.ReadFrame()
		a.mu.Lock()
		if err != nil {
			a.readErr = err
			a.changed.Broadcast()
			a.mu.Unlock()
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if v, ok := f.Value(http2.SettingInitialWindowSize); ok {
					for id := range a.windows {
						a.windows[id] += int64(v) - a.initWindow
					}
					a.initWindow = int64(v)
				}
				a.settings = true
				a.mu.Unlock()
				_ = a.writeLocked(func() error { return a.fr.WriteSettingsAck() })
				a.mu.Lock()
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				a.connWindow += int64(f.Increment)
			} else {
				a.windows[f.StreamID] += int64(f.Increment)
			}
		case *http2.RSTStreamFrame:
			a.refused[f.StreamID] = true
		case *http2.PingFrame:
			if f.IsAck() {
				a.pingAck <- struct{}{}
			}
		}
		a.changed.Broadcast()
		a.mu.Unlock()
	}
}

// writeLocked runs f, which writes frames, alone on the connection.
func (a *attackConn) writeLocked(f func() error) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	return f()
}

// halfSend opens n streams and sends each msgLen-1 bytes of a msgLen-byte
// message, as far as the server's windows allow; it returns how many
// streams the server took (did not refuse) and confirms with a PING that
// the server read every frame sent.
func (a *attackConn) halfSend(addr string, n, msgLen int) (int, error) {
	a.mu.Lock()
	for !a.settings && a.readErr == nil {
		a.changed.Wait()
	}
	a.mu.Unlock()
	var hb strings.Builder
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/envoy.service.auth.v3.Authorization/Check"}, {":authority", addr}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	block := []byte(hb.String())
	chunk := make([]byte, 16<<10)
	ids := make([]uint32, n)
	for i := range n {
		id := uint32(2*i + 1)
		ids[i] = id
		a.mu.Lock()
		a.windows[id] = a.initWindow
		a.mu.Unlock()
		if err := a.writeLocked(func() error {
			return a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true})
		}); err != nil {
			return 0, err
		}
	}
	prefix := make([]byte, 5)
	binary.BigEndian.PutUint32(prefix[1:], uint32(msgLen))
	for _, id := range ids {
		left := 5 + msgLen - 1
		first := true
		for left > 0 {
			a.mu.Lock()
			for !a.refused[id] && a.readErr == nil && (a.windows[id] <= 0 || a.connWindow <= 0) {
				a.changed.Wait()
			}
			if a.refused[id] || a.readErr != nil {
				a.mu.Unlock()
				break
			}
			k := min(int64(left), a.windows[id], a.connWindow, int64(len(chunk)))
			a.windows[id] -= k
			a.connWindow -= k
			a.mu.Unlock()
			data := chunk[:k]
			if first {
				data = append(append([]byte{}, prefix...), chunk[:k-5]...)
				first = false
			}
			if err := a.writeLocked(func() error { return a.fr.WriteData(id, false, data) }); err != nil {
				return 0, err
			}
			left -= int(k)
		}
	}
	if err := a.writeLocked(func() error { return a.fr.WritePing(false, [8]byte{1}) }); err != nil {
		return 0, err
	}
	select {
	case <-a.pingAck:
	case <-time.After(time.Minute):
		return 0, errors.New("no PING ack")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	taken := 0
	for _, id := range ids {
		if !a.refused[id] {
			taken++
		}
	}
	return taken, a.readErr
}

// TestGRPC_HalfSentStreamsStayWithinDeploymentMemory: a client opens more
// connections than limits.max_connections, on each more streams than
// limits.max_concurrent_streams, and on every stream announces the largest
// allowed CheckRequest and sends all of it but its last byte, then holds.
// Only connections × streams of them are taken, and the memory the process
// holds with all of those half-sent stays below the shipped Deployment's
// memory limit. (This test process holds the attacker too, so the figure
// overstates the server's.)
func TestGRPC_HalfSentStreamsStayWithinDeploymentMemory(t *testing.T) {
	limit := deploymentMemoryLimit(t)
	f := newFixture(t)
	r := runService(t, Options{ConfigPath: f.cfgPath, DrainDelay: -1})
	addr := r.svc.Addr().String()
	l := defaultLimits
	msgLen := MaxCheckRequestBytes(l)
	conns, streams := l.MaxConnections+8, l.MaxConcurrentStreams+8

	before := inUse()
	start := time.Now()
	type result struct {
		taken int
		err   error
	}
	results := make(chan result, conns)
	for range conns {
		a, err := dialAttack(t, addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			n, err := a.halfSend(addr, streams, msgLen)
			results <- result{n, err}
		}()
	}
	// The connections beyond max_connections are never accepted: their
	// halfSend waits for SETTINGS. Collect the ones that are.
	taken, served := 0, 0
	for served < l.MaxConnections {
		select {
		case res := <-results:
			if res.err != nil {
				t.Fatal(res.err)
			}
			if res.taken > l.MaxConcurrentStreams {
				t.Fatalf("a connection had %d streams taken, more than max_concurrent_streams %d", res.taken, l.MaxConcurrentStreams)
			}
			taken += res.taken
			served++
		case <-time.After(2 * time.Minute):
			t.Fatalf("only %d connections were served", served)
		}
	}
	elapsed := time.Since(start)
	held := inUse()
	select {
	case res := <-results:
		t.Fatalf("a connection beyond max_connections (%d) was served: %+v", l.MaxConnections, res)
	default:
	}
	t.Logf("%d connections × %d streams taken (%d × %d attempted), each with %d of %d bytes sent, in %s: Go heap+stacks %d MiB before, %d MiB held; Deployment limit %d MiB",
		served, taken/served, conns, streams, msgLen-1, msgLen, elapsed.Round(time.Millisecond), before>>20, held>>20, limit>>20)
	if taken != l.MaxConnections*l.MaxConcurrentStreams {
		t.Errorf("%d streams taken, want max_connections × max_concurrent_streams = %d", taken, l.MaxConnections*l.MaxConcurrentStreams)
	}
	if held >= limit {
		t.Fatalf("holding %d MiB, at or over the Deployment's %d MiB limit", held>>20, limit>>20)
	}
}
