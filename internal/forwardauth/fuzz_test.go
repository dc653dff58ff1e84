package forwardauth

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/authz"
)

type noDecider struct{}

func (noDecider) Decide(context.Context, *authz.Request) authz.Decision { return authz.Decision{} }

// FuzzRequest fuzzes the mapping of a subrequest to the original request:
// the peer, the request target and a raw header block (names repeat, values
// hold commas). From a peer outside the trusted prefixes no forwarded header
// is used or passed on; from a trusted one each is used only when it is
// sent once (and, for X-Forwarded-Host, is not a list), and an ambiguous
// one is taken as empty, never as the client's share of it.
func FuzzRequest(f *testing.F) {
	for _, s := range []struct {
		peer, target, host, headers string
	}{
		{"10.0.0.1:5555", "/auth", "auth.internal", "X-Forwarded-Host: api.acme.test\nX-Forwarded-Uri: /orders?x=1\nX-Forwarded-Method: POST"},
		{"203.0.113.9:1", "/auth/x?y", "auth.internal", "X-Forwarded-Host: api.acme.test\nForwarded: host=evil"},
		{"10.0.0.1:1", "/auth", "h", "X-Forwarded-Host: a, b\nX-Forwarded-Uri: /1\nX-Forwarded-Uri: /2\nX-Original-Uri: /o"},
		{"[::ffff:10.0.0.1]:1", "/authz", "h", "X-Original-Method: PUT\nX-Original-URI: /orig\ncookie: a=1\nCookie: b=2"},
		{"127.0.0.1:1", "*", "h", "x-forwarded-host:  spaced  "},
		{"10.0.0.1", "http://h/auth?q", "h", "X-Request-Id: r1"},
		{"unix", "/auth", "h", "X-Forwarded-For: 1.2.3.4"},
	} {
		f.Add(s.peer, s.target, s.host, "GET", s.headers)
	}
	h, err := New(noDecider{}, Options{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		PathPrefix:     "/auth",
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, peer, target, host, method, headers string) {
		r := &http.Request{RemoteAddr: peer, RequestURI: target, Host: host, Method: method, Header: http.Header{}}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			u = &url.URL{Path: "/"}
		}
		r.URL = u
		for _, line := range strings.Split(headers, "\n") {
			name, value, ok := strings.Cut(line, ":")
			if ok && name != "" {
				r.Header.Add(http.CanonicalHeaderKey(strings.TrimSpace(name)), value)
			}
		}
		got := h.request(r.WithContext(context.Background()))

		for name := range got.Headers {
			if name != strings.ToLower(name) {
				t.Fatalf("header name %q not lowercase", name)
			}
		}
		if got.RequestID != got.Headers["x-request-id"] {
			t.Fatalf("request id %q, header %q", got.RequestID, got.Headers["x-request-id"])
		}
		own := h.ownTarget(r)
		if rest, under := strings.CutPrefix(r.RequestURI, "/auth"); under && strings.HasPrefix(rest, "/") && own != rest {
			t.Fatalf("own target of %q = %q, want %q", r.RequestURI, own, rest)
		}
		trusted := false
		if ap, err := netip.ParseAddrPort(peer); err == nil {
			trusted = netip.MustParsePrefix("10.0.0.0/8").Contains(ap.Addr().Unmap())
		} else if a, err := netip.ParseAddr(peer); err == nil {
			trusted = netip.MustParsePrefix("10.0.0.0/8").Contains(a.Unmap())
		}
		if !trusted {
			for _, fh := range forwardedHeaders {
				if _, passed := got.Headers[strings.ToLower(fh)]; passed {
					t.Fatalf("untrusted peer %q: forwarded header %s passed on", peer, fh)
				}
			}
			if got.Host != host || got.Method != method || got.Path != own {
				t.Fatalf("untrusted peer %q: mapped to %q %q %q", peer, got.Host, got.Method, got.Path)
			}
			return
		}
		// single returns the value of a header sent exactly once, "" for an
		// ambiguous one, and whether it was sent at all.
		single := func(name string, list bool) (string, bool) {
			vals := r.Header[name]
			switch {
			case len(vals) == 0:
				return "", false
			case len(vals) > 1:
				return "", true
			}
			v := strings.TrimSpace(vals[0])
			if list && strings.Contains(v, ",") {
				return "", true
			}
			return v, true
		}
		wantHost := host
		if v, ok := single(hForwardedHost, true); ok {
			wantHost = v
		}
		wantPath := own
		if v, ok := single(hForwardedURI, false); ok {
			wantPath = v
		} else if v, ok := single(hOriginalURI, false); ok {
			wantPath = v
		}
		wantMethod := method
		if v, ok := single(hForwardedMethod, false); ok {
			wantMethod = v
		} else if v, ok := single(hOriginalMethod, false); ok {
			wantMethod = v
		}
		if got.Host != wantHost || got.Path != wantPath || got.Method != wantMethod {
			t.Fatalf("trusted peer: got %q %q %q, want %q %q %q", got.Host, got.Method, got.Path, wantHost, wantMethod, wantPath)
		}
	})
}
