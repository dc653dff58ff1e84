package jwkscache

import (
	"crypto/tls"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// idleConnTimeout closes a pooled connection nobody used for this long.
// Refreshes of one provider are minutes apart, but 10,000 providers on one
// host keep a few connections busy; a quiet host costs nothing after it.
const idleConnTimeout = 90 * time.Second

// transports hands out the HTTP transports providers fetch through. A
// transport per provider would keep one idle connection (two goroutines,
// buffers, TLS state: tens of KB) per provider, so 10,000 providers on one
// identity provider held 10,000 connections to it. Instead every provider
// without pins shares one transport, which pools connections by host, and
// providers with the same SPKI pins share one transport whose handshakes
// check them, so a connection verified against one set of pins never
// serves a provider that requires others, nor an unpinned one.
type transports struct {
	// base is nil when the registry's client has a RoundTripper that is not
	// an *http.Transport: it is used as is, and pins are checked on each
	// response before its body is read.
	base  *http.Transport
	other http.RoundTripper

	mu     sync.Mutex
	pinned map[string]*pinnedTransport // by canonical pin set
}

type pinnedTransport struct {
	t    *http.Transport
	refs int
}

// newTransports derives the shared transport from rt (nil: the default),
// bounding its connections: at most maxPerHost per host (in use and idle:
// MaxConcurrentFetches fetches run at once) and 4×maxPerHost idle in all,
// each closed after idleConnTimeout unused. Tighter limits set on rt stay.
func newTransports(rt http.RoundTripper, maxPerHost int) *transports {
	if rt == nil {
		rt = http.DefaultTransport
	}
	t, ok := rt.(*http.Transport)
	if !ok {
		return &transports{other: rt}
	}
	t = t.Clone()
	tighten := func(v *int, limit int) {
		if *v <= 0 || *v > limit {
			*v = limit
		}
	}
	tighten(&t.MaxConnsPerHost, maxPerHost)
	tighten(&t.MaxIdleConnsPerHost, maxPerHost)
	tighten(&t.MaxIdleConns, 4*maxPerHost)
	if t.IdleConnTimeout <= 0 || t.IdleConnTimeout > idleConnTimeout {
		t.IdleConnTimeout = idleConnTimeout
	}
	return &transports{base: t, pinned: map[string]*pinnedTransport{}}
}

// get returns the transport for a provider with pins (SHA-256 digests) and
// the function that gives it back when the provider closes.
func (ts *transports) get(pins [][]byte) (http.RoundTripper, func()) {
	if ts.base == nil {
		return ts.other, func() {}
	}
	if len(pins) == 0 {
		return ts.base, func() {}
	}
	key := pinKey(pins)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	pt := ts.pinned[key]
	if pt == nil {
		t := ts.base.Clone()
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{}
		}
		prev := t.TLSClientConfig.VerifyConnection
		t.TLSClientConfig.VerifyConnection = func(cs tls.ConnectionState) error {
			if prev != nil {
				if err := prev(cs); err != nil {
					return err
				}
			}
			return checkPins(pins, cs)
		}
		pt = &pinnedTransport{t: t}
		ts.pinned[key] = pt
	}
	pt.refs++
	var once sync.Once
	return pt.t, func() { once.Do(func() { ts.release(key, pt) }) }
}

func (ts *transports) release(key string, pt *pinnedTransport) {
	ts.mu.Lock()
	pt.refs--
	last := pt.refs == 0
	if last {
		delete(ts.pinned, key)
	}
	ts.mu.Unlock()
	if last {
		pt.t.CloseIdleConnections()
	}
}

// closeIdle closes every idle pooled connection (Registry.Close).
func (ts *transports) closeIdle() {
	if ts.base == nil {
		return
	}
	ts.base.CloseIdleConnections()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, pt := range ts.pinned {
		pt.t.CloseIdleConnections()
	}
}

// pinKey names a pin set independently of order and duplicates.
func pinKey(pins [][]byte) string {
	hs := make([]string, len(pins))
	for i, p := range pins {
		hs[i] = hex.EncodeToString(p)
	}
	slices.Sort(hs)
	return strings.Join(slices.Compact(hs), ",")
}

// clientFor returns one provider's HTTP client: the registry's settings
// (cookie jar, timeout), its own redirect guard, and a shared transport.
func (ts *transports) clientFor(base *http.Client, checkRedirect func(*http.Request, []*http.Request) error, pins [][]byte) (*http.Client, func()) {
	rt, release := ts.get(pins)
	return &http.Client{Transport: rt, CheckRedirect: checkRedirect, Jar: base.Jar, Timeout: base.Timeout}, release
}
