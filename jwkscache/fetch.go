package jwkscache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
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
	// cacheHeader holds the response's freshness fields (merged into the
	// stored ones for a 304), to be kept with the key set.
	cacheHeader http.Header
	// fleet is RefreshShared or RefreshDeferred when a coordinated
	// refresh made no request of its own; empty otherwise.
	fleet RefreshResult
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
//
// stored are the freshness fields kept from the response that produced the
// current set: a 304 that omits Cache-Control or Expires keeps them (RFC 9111
// §4.3.4), rather than falling back to min_ttl.
func (f *fetcher) fetch(ctx context.Context, now time.Time, etag, lastModified string, stored http.Header) (fetchResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return fetchResult{}, redactError(err)
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
		// The client's *url.Error quotes the URL it was fetching (ours, or
		// a redirect's target) with its user info and query.
		return fetchResult{}, redactError(err)
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
	res.etag, res.lastModified = validators(resp.Header)
	if !res.notModified {
		stored = nil
	}
	res.cacheHeader = mergeFreshness(stored, resp.Header)
	eval := res.cacheHeader
	if age := resp.Header.Values("Age"); len(age) > 0 {
		// Age describes this response only; it is not stored.
		eval = eval.Clone()
		eval["Age"] = age
	}
	res.ttl = freshness(eval, now, f.minTTL, f.maxTTL)
	return res, nil
}

// maxValidatorBytes bounds a validator kept for the next conditional request.
const maxValidatorBytes = 1024

// validators returns the ETag and Last-Modified to send back next time
// (RFC 9110 §13.1.1, §13.1.3). They go back to the server verbatim, and
// servers cap request header sizes at a few KiB: an oversized validator
// would make every later refresh fail while the identity provider is
// healthy, so it is dropped and the next fetch is unconditional. A
// Last-Modified that is not an HTTP-date would be ignored by the server
// (§13.1.3), so it is not kept either.
func validators(h http.Header) (etag, lastModified string) {
	etag, lastModified = h.Get("ETag"), h.Get("Last-Modified")
	if len(etag) > maxValidatorBytes {
		etag = ""
	}
	if _, err := http.ParseTime(lastModified); err != nil || len(lastModified) > maxValidatorBytes {
		lastModified = ""
	}
	return etag, lastModified
}

// freshnessFields are the stored response fields freshness reads, which a
// 304 updates field by field (RFC 9111 §4.3.4).
var freshnessFields = [...]string{"Cache-Control", "Expires", "Date"}

// mergeFreshness returns the freshness fields of resp, each taken from
// stored when resp does not carry it.
func mergeFreshness(stored, resp http.Header) http.Header {
	h := make(http.Header, len(freshnessFields))
	for _, name := range freshnessFields {
		if vs := resp.Values(name); len(vs) > 0 {
			h[name] = slices.Clone(vs)
		} else if vs := stored.Values(name); len(vs) > 0 {
			h[name] = vs
		}
	}
	return h
}

// freshness computes how long a response stays fresh (RFC 9111 §4.2):
// its freshness lifetime (Cache-Control max-age, else Expires minus Date,
// §4.2.1) minus its current age (the Age header, §4.2.3), clamped to
// [minTTL, maxTTL]. no-store and no-cache (§5.2.2.4, §5.2.2.5) mean minTTL:
// the floor protects the identity provider; the cache still has to hold keys
// to verify anything. Without any freshness information minTTL applies too.
//
// Edge cases follow the RFC: a delta-seconds too large to represent is the
// largest value (§1.2.2), so max-age=99999999999999999999 is maxTTL and such
// an Age makes the response stale; conflicting max-age directives make the
// response stale (§4.2.1); an invalid max-age or Expires (a negative
// number, a date that does not parse) means "already expired" (§5.3,
// §5.2.2.1). s-maxage is for shared caches (§5.2.2.10): this cache is the
// relying party's own, so it ignores it.
func freshness(h http.Header, now time.Time, minTTL, maxTTL time.Duration) time.Duration {
	// ceiling stands for "too large to represent": anything above maxTTL
	// clamps the same way.
	ceiling := int64(maxTTL/time.Second) + 1
	lifetime, ok := time.Duration(0), false
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return minTTL
			case "max-age":
				n, valid := deltaSeconds(strings.Trim(strings.TrimSpace(value), `"`), ceiling)
				if !valid {
					return minTTL
				}
				d := time.Duration(n) * time.Second
				if ok && d != lifetime {
					return minTTL
				}
				lifetime, ok = d, true
			}
		}
	}
	if !ok {
		exp := h.Get("Expires")
		if exp == "" {
			return minTTL
		}
		t, err := http.ParseTime(exp)
		if err != nil {
			return minTTL
		}
		date := now
		if d, err := http.ParseTime(h.Get("Date")); err == nil {
			date = d
		}
		lifetime = t.Sub(date)
	}
	if age := strings.TrimSpace(h.Get("Age")); age != "" {
		if n, valid := deltaSeconds(age, ceiling); valid {
			// Saturating: an Expires centuries past is already the most
			// negative Duration, and subtracting would wrap it to a lifetime
			// of max_ttl. Anything at or below 0 means min_ttl anyway.
			left := max(lifetime, 0)
			lifetime = left - min(time.Duration(n)*time.Second, left)
		}
	}
	return min(max(lifetime, minTTL), maxTTL)
}

// deltaSeconds parses an RFC 9111 §1.2.2 delta-seconds (digits only),
// saturating at ceiling.
func deltaSeconds(s string, ceiling int64) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < ceiling {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, ceiling), true
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
			if len(list) > 0 && !HostAllowed(host, list) {
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

// redactURL drops user info and query, which may carry credentials.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	return c.String()
}

// redactRawURL is redactURL for a URL still in text form; text that does
// not parse is not quoted at all.
func redactRawURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return redactURL(u)
}

// redactError rewrites the URLs inside every *url.Error of err's chain
// (net/http's client wraps each failure in one, naming the URL it was
// fetching), so that errors, logs and the admin API never carry the
// credentials a JWKS URL may hold.
func redactError(err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if ue, ok := e.(*url.Error); ok {
			ue.URL = redactRawURL(ue.URL)
		}
	}
	return err
}

// checkPins requires a certificate of a chain the TLS stack verified whose
// SubjectPublicKeyInfo hashes to a pin (HPKP-style pinning, RFC 7469 §2.4:
// "the pinned key [must be] in the validated certificate chain"). The
// certificates the peer merely sent do not count: an impostor holding any
// publicly trusted certificate could append the real identity provider's
// certificate to its own chain. Without verified chains (verification
// turned off) nothing matches, so pinning fails closed.
func checkPins(pins [][]byte, cs tls.ConnectionState) error {
	for _, chain := range cs.VerifiedChains {
		for _, c := range chain {
			sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
			for _, p := range pins {
				if bytes.Equal(sum[:], p) {
					return nil
				}
			}
		}
	}
	return errors.New("no certificate of a verified chain matches pinned_spki")
}
