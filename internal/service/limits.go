package service

import (
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/extauthz/extauthz/internal/tenants"
)

// HTTPTimeouts bound every connection of the HTTP listeners (forward-auth
// and admin), so a client that sends slowly, reads slowly or idles cannot
// hold a connection (and its slot under limits.max_connections) for long.
type HTTPTimeouts struct {
	// ReadHeader bounds reading the request line and headers.
	ReadHeader time.Duration
	// Read bounds reading the whole request, body included. Neither
	// listener reads a body: forward-auth closes the connection after
	// answering a request that announced one, and the admin API takes none.
	Read time.Duration
	// Write bounds writing the answer, from the end of the headers' read:
	// a decision or a forced refresh (bounded by the admin API's own
	// refresh timeout) finishes well within it.
	Write time.Duration
	// Idle bounds the wait for the next request on a kept-alive connection.
	Idle time.Duration
}

// DefaultHTTPTimeouts are the HTTP listeners' bounds unless Options set
// others.
var DefaultHTTPTimeouts = HTTPTimeouts{
	ReadHeader: 5 * time.Second,
	Read:       10 * time.Second,
	Write:      30 * time.Second,
	Idle:       2 * time.Minute,
}

// withDefaults fills the zero fields from DefaultHTTPTimeouts.
func (t HTTPTimeouts) withDefaults() HTTPTimeouts {
	d := DefaultHTTPTimeouts
	if t.ReadHeader > 0 {
		d.ReadHeader = t.ReadHeader
	}
	if t.Read > 0 {
		d.Read = t.Read
	}
	if t.Write > 0 {
		d.Write = t.Write
	}
	if t.Idle > 0 {
		d.Idle = t.Idle
	}
	return d
}

// checkRequestOverhead is what a CheckRequest carries besides the request's
// own header bytes: the protobuf framing of every field (a few bytes a
// header), the peer and destination addresses, the request's id, scheme,
// protocol and sizes, and Envoy's metadata context.
const checkRequestOverhead = 8 << 10

// maxGRPCHeaderListBytes bounds the HTTP/2 headers of one gRPC call (the
// gRPC metadata Envoy sends: :path, content-type, te, grpc-timeout and a few
// x-envoy-* headers). The HTTP request being checked travels in the message.
const maxGRPCHeaderListBytes = 16 << 10

// MaxCheckRequestBytes is the largest CheckRequest the gRPC listener
// accepts (grpc.MaxRecvMsgSize). The checked request's headers, within
// limits.max_request_header_bytes (which holds the largest token too),
// appear in attributes.request.http.headers; Envoy repeats :path and
// :authority in its path and host fields, which at most doubles them; the
// rest is checkRequestOverhead. A CheckRequest with the largest token and
// headers fits; one much larger is refused before it is decoded.
func MaxCheckRequestBytes(l tenants.Limits) int {
	return 2*l.MaxRequestHeaderBytes + checkRequestOverhead
}

// grpcServerOptions bound what one client can make the gRPC listener hold.
// In the worst case, every connection (limits.max_connections) carries the
// most streams (limits.max_concurrent_streams), each with a message of
// MaxCheckRequestBytes received all but its last byte: the defaults keep
// that product (64 × 32 × 72 KiB = 144 MiB) inside the shipped Deployment's
// 256 MiB memory limit.
func grpcServerOptions(l tenants.Limits) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxCheckRequestBytes(l)),
		grpc.MaxConcurrentStreams(uint32(l.MaxConcurrentStreams)),
		grpc.MaxHeaderListSize(maxGRPCHeaderListBytes),
		// Fixed flow-control windows turn off the BDP estimator, which
		// could otherwise grow each connection's window to 16 MiB.
		grpc.InitialWindowSize(64 << 10),
		grpc.InitialConnWindowSize(1 << 20),
		// The HTTP/2 preface and settings of a new connection.
		grpc.ConnectionTimeout(10 * time.Second),
		// A client may ping at most every 10 s (Envoy's connection
		// keepalive is longer); one that pings more often is sent GOAWAY
		// (too_many_pings) instead of keeping the server busy.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             10 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			// An idle connection gives its slot back.
			MaxConnectionIdle: 5 * time.Minute,
			// Every connection ends in time, and with it any stream a
			// client left half-sent: GOAWAY, then the grace period.
			MaxConnectionAge:      30 * time.Minute,
			MaxConnectionAgeGrace: 30 * time.Second,
			// A peer that vanished without a FIN is noticed.
			Time:    2 * time.Minute,
			Timeout: 20 * time.Second,
		}),
	}
}

// limitListener bounds the connections served at once at max; further
// clients wait in the kernel's accept queue until one closes.
func limitListener(lis net.Listener, max int) net.Listener {
	return netutil.LimitListener(lis, max)
}

// newHTTPServer returns an HTTP server for h with the timeouts t and the
// request header bound of l.
func newHTTPServer(h http.Handler, t HTTPTimeouts, l tenants.Limits) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		// net/http adds 4096 bytes of slack to this bound; over it the
		// client gets 431.
		MaxHeaderBytes: l.MaxRequestHeaderBytes,
	}
}
