package jwkscache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// fetchResult is the outcome of one HTTP attempt.
type fetchResult struct {
	status       int
	notModified  bool
	body         []byte
	ttl          time.Duration
	etag         string
	lastModified string
}

// fetcher performs the HTTP side of one provider's refreshes.
type fetcher struct {
	url      string
	display  string // url without user info or query, for errors and logs
	client   *http.Client
	maxBytes int64
	minTTL   time.Duration
	maxTTL   time.Duration
	pins     [][]byte // SHA-256 of SubjectPublicKeyInfo
}

// fetch makes one conditional GET (RFC 9110 §13.1.1–13.1.3): the stored
// ETag and Last-Modified let the server answer 304 Not Modified.
func (f *fetcher) fetch(ctx context.Context, now time.Time, etag, lastModified string) (fetchResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return fetchResult{}, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	if lastModified != "" {
		req.Header.Set("If-Modified-Since", lastModified)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return fetchResult{}, err
	}
	defer resp.Body.Close()
	res := fetchResult{status: resp.StatusCode}
	// Pins are checked before a byte of the body is read (the transport's
	// VerifyConnection already did; this also covers custom transports).
	if len(f.pins) > 0 {
		if resp.TLS == nil {
			return res, errors.New("SPKI pinning requires TLS")
		}
		if err := checkPins(f.pins, *resp.TLS); err != nil {
			return res, err
		}
	}
	switch {
	case resp.StatusCode == http.StatusNotModified:
		res.notModified = true
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return res, fmt.Errorf("unexpected HTTP status %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	default:
		if resp.ContentLength > f.maxBytes {
			return res, fmt.Errorf("response of %d bytes exceeds max_response_bytes %d", resp.ContentLength, f.maxBytes)
		}
		// Read at most one byte past the limit, whatever Content-Length says.
		body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
		if err != nil {
			return res, fmt.Errorf("reading body: %w", err)
		}
		if int64(len(body)) > f.maxBytes {
			return res, fmt.Errorf("response exceeds max_response_bytes %d", f.maxBytes)
		}
		res.body = bytes.Clone(body)
	}
	res.etag = resp.Header.Get("ETag")
	res.lastModified = resp.Header.Get("Last-Modified")
	res.ttl = freshness(resp.Header, now, f.minTTL, f.maxTTL)
	return res, nil
}

// freshness computes how long a response stays fresh (RFC 9111 §4.2.1):
// Cache-Control max-age minus Age, else Expires minus Date, clamped to
// [minTTL, maxTTL]. no-store and no-cache (§5.2.2.4, §5.2.2.5) mean minTTL:
// the floor protects the identity provider; the cache still has to hold keys
// to verify anything. Without any freshness information minTTL applies too.
func freshness(h http.Header, now time.Time, minTTL, maxTTL time.Duration) time.Duration {
	ttl, ok := time.Duration(0), false
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return minTTL
			case "max-age":
				if n, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64); err == nil && n >= 0 {
					ttl, ok = time.Duration(min(n, int64(maxTTL/time.Second)+1))*time.Second, true
				}
			}
		}
	}
	if ok {
		if age, err := strconv.ParseInt(h.Get("Age"), 10, 64); err == nil && age > 0 {
			ttl -= time.Duration(min(age, int64(maxTTL/time.Second)+1)) * time.Second
		}
	} else if exp := h.Get("Expires"); exp != "" {
		ok = true // an invalid Expires means "already expired" (RFC 9111 §5.3)
		if t, err := http.ParseTime(exp); err == nil {
			date := now
			if d, err := http.ParseTime(h.Get("Date")); err == nil {
				date = d
			}
			ttl = t.Sub(date)
		}
	}
	if !ok {
		return minTTL
	}
	return min(max(ttl, minTTL), maxTTL)
}

// redirectGuard returns the CheckRedirect of one provider: at most
// maxRedirects hops, each https when required and inside every allowlist.
// A redirect is a new fetch target, so it gets the checks the JWKS URL got.
func redirectGuard(maxRedirects int, requireHTTPS bool, allowlists ...[]string) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) > maxRedirects {
			return fmt.Errorf("more than max_redirects %d redirects", maxRedirects)
		}
		if requireHTTPS && req.URL.Scheme != "https" {
			return fmt.Errorf("redirect to non-https URL %s refused", redactURL(req.URL))
		}
		host := canonicalHost(req.URL)
		for _, list := range allowlists {
			if len(list) > 0 && !hostAllowed(host, list) {
				return fmt.Errorf("redirect to host %q outside the allowed domains", host)
			}
		}
		return nil
	}
}

// canonicalHost is a URL's host name, lowercase, without port or trailing dot.
func canonicalHost(u *url.URL) string {
	return strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
}

// hostAllowed reports whether host equals an allowlist entry or is a
// subdomain of one.
func hostAllowed(host string, allowlist []string) bool {
	for _, d := range allowlist {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// redactURL drops user info and query, which may carry credentials.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.Fragment = ""
	return c.String()
}

// checkPins requires one certificate of the connection whose
// SubjectPublicKeyInfo hashes to a pin (HPKP-style pinning, RFC 7469 §2.4).
func checkPins(pins [][]byte, cs tls.ConnectionState) error {
	check := func(certs []*x509.Certificate) bool {
		for _, c := range certs {
			sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
			for _, p := range pins {
				if bytes.Equal(sum[:], p) {
					return true
				}
			}
		}
		return false
	}
	if check(cs.PeerCertificates) {
		return nil
	}
	for _, chain := range cs.VerifiedChains {
		if check(chain) {
			return nil
		}
	}
	return errors.New("no certificate matches pinned_spki")
}

// providerClient derives one provider's HTTP client from the registry's:
// its own redirect guard, and a cloned transport whose TLS handshake checks
// the SPKI pins, so a pinned provider never sends a request to an impostor.
// The clone also gives the provider its own connection pool, closed with it.
func providerClient(base *http.Client, checkRedirect func(*http.Request, []*http.Request) error, pins [][]byte) (*http.Client, func()) {
	c := &http.Client{CheckRedirect: checkRedirect, Jar: base.Jar, Timeout: base.Timeout}
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	t, ok := rt.(*http.Transport)
	if !ok {
		c.Transport = rt // pins are then checked on resp.TLS before reading
		return c, func() {}
	}
	t = t.Clone()
	if len(pins) > 0 {
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
	}
	c.Transport = t
	return c, t.CloseIdleConnections
}
