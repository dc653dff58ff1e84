package jwkscache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The well-known locations of an issuer's metadata document.
const (
	oidcWellKnown  = "/.well-known/openid-configuration"
	oauthWellKnown = "/.well-known/oauth-authorization-server"
)

// DiscoveryURL returns where issuer's metadata document is: with oauth
// false, {issuer}/.well-known/openid-configuration (OpenID Connect
// Discovery 1.0 §4, a terminating "/" removed first); with oauth true, the
// RFC 8414 §3.1 location, /.well-known/oauth-authorization-server inserted
// between the host and the path.
func DiscoveryURL(issuer string, oauth bool) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		// OIDC Discovery §2 and RFC 8414 §2: an issuer is a URL with a
		// scheme and host, and no query or fragment.
		return "", fmt.Errorf("issuer %q is not a URL with a scheme and host and without query or fragment", issuer)
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	if oauth {
		return u.Scheme + "://" + u.Host + oauthWellKnown + path, nil
	}
	return u.Scheme + "://" + u.Host + path + oidcWellKnown, nil
}

// ErrIssuerMismatch means a metadata document names another issuer than
// the configured one (OpenID Connect Discovery 1.0 §4.3, RFC 8414 §3.3).
var ErrIssuerMismatch = errors.New("jwkscache: metadata issuer differs from the configured issuer")

// metadataDoc is one verified metadata document: only issuer and jwks_uri
// are trusted. The algorithms it advertises are not an allowlist; the
// configured algorithms are.
type metadataDoc struct {
	jwksURI      string
	fetchedAt    time.Time
	expiresAt    time.Time
	etag         string
	lastModified string
	cacheHeader  http.Header
}

// metadata keeps one provider's metadata document. The provider's refresh
// (one at a time) is its only writer; status reads it under mu, which is
// never held across network I/O.
type metadata struct {
	issuer  string
	fetcher fetcher // url is the discovery URL; the provider's client and limits
	// check applies the guards of a configured jwks_url to a discovered one.
	check func(string) error

	mu       sync.Mutex
	doc      *metadataDoc
	lastErr  error
	keysFrom string // the jwks_uri the current key set was fetched from
}

// jwksURI returns the jwks_uri to fetch keys from, fetching the metadata
// document again (conditionally, RFC 9110 §13.1) when it has expired. A
// failed fetch keeps the last verified jwks_uri, so that warm keys go on
// being refreshed; from cold it is an error, which the provider reports as
// ErrUnavailable.
func (m *metadata) jwksURI(ctx context.Context, now time.Time) (string, error) {
	m.mu.Lock()
	old := m.doc
	m.mu.Unlock()
	if old != nil && now.Before(old.expiresAt) {
		return old.jwksURI, nil
	}
	doc, err := m.fetch(ctx, now, old)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastErr = err
	if err != nil {
		if old != nil {
			return old.jwksURI, nil
		}
		return "", fmt.Errorf("metadata %s: %w", m.fetcher.display, err)
	}
	m.doc = doc
	return doc.jwksURI, nil
}

// fetch gets and verifies the document; old, when set, makes the request
// conditional.
func (m *metadata) fetch(ctx context.Context, now time.Time, old *metadataDoc) (*metadataDoc, error) {
	var etag, lastMod string
	var stored http.Header
	if old != nil {
		etag, lastMod, stored = old.etag, old.lastModified, old.cacheHeader
	}
	res, err := m.fetcher.fetch(ctx, now, etag, lastMod, stored)
	if err != nil {
		return nil, err
	}
	doc := &metadataDoc{fetchedAt: now, expiresAt: now.Add(res.ttl), etag: res.etag, lastModified: res.lastModified, cacheHeader: res.cacheHeader}
	if res.notModified {
		if old == nil {
			return nil, errors.New("304 Not Modified without a cached document")
		}
		doc.jwksURI = old.jwksURI
		return doc, nil
	}
	var body struct {
		Issuer  *string `json:"issuer"`
		JWKSURI *string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil {
		return nil, fmt.Errorf("metadata is not a JSON object: %w", err)
	}
	switch {
	case body.Issuer == nil:
		return nil, errors.New("metadata has no issuer")
	case !sameIssuer(m.issuer, *body.Issuer):
		// Compared exactly: OIDC Discovery §4.3, RFC 8414 §3.3. The
		// document's value is not echoed: it is the server's to choose.
		return nil, fmt.Errorf("%w %q", ErrIssuerMismatch, m.issuer)
	case body.JWKSURI == nil || *body.JWKSURI == "":
		return nil, errors.New("metadata has no jwks_uri")
	}
	if err := m.check(*body.JWKSURI); err != nil {
		return nil, fmt.Errorf("metadata jwks_uri: %w", err)
	}
	doc.jwksURI = *body.JWKSURI
	return doc, nil
}

// keysFetched records the jwks_uri the current key set came from; m may be
// nil (no discovery).
func (m *metadata) keysFetched(uri string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.keysFrom = uri
	m.mu.Unlock()
}

// conditional reports whether a key set from keysFrom may be revalidated
// at uri: validators of one URL mean nothing to another.
func (m *metadata) conditional(uri string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keysFrom == uri
}

// expire makes the next refresh fetch the document again (conditionally);
// m may be nil (no discovery).
func (m *metadata) expire() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.doc != nil {
		d := *m.doc
		d.expiresAt = time.Time{}
		m.doc = &d
	}
}

// expiry returns when the document expires (zero before the first).
func (m *metadata) expiry() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.doc == nil {
		return time.Time{}
	}
	return m.doc.expiresAt
}

// carry takes over old's document, so a replacement registered for the
// same issuer revalidates rather than starts over.
func (m *metadata) carry(old *metadata) {
	if old == nil {
		return
	}
	old.mu.Lock()
	doc, keysFrom := old.doc, old.keysFrom
	old.mu.Unlock()
	m.mu.Lock()
	m.doc, m.keysFrom = doc, keysFrom
	m.mu.Unlock()
}

// fill adds the metadata's view to a Status.
func (m *metadata) fill(st *Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st.DiscoveryURL = m.fetcher.display
	if m.doc != nil {
		st.JWKSURI = redactString(m.doc.jwksURI)
		st.MetadataFetchedAt, st.MetadataExpiresAt = m.doc.fetchedAt, m.doc.expiresAt
	}
	if m.lastErr != nil {
		st.MetadataError = m.lastErr.Error()
	}
}

// sameIssuer compares a document's issuer with the configured one exactly
// (OIDC Discovery §4.3, RFC 8414 §3.3). A configured issuer template with
// one placeholder, such as https://login.microsoftonline.com/{tid}/v2.0,
// equals a document issuer with one placeholder of any name in its place:
// a multi-tenant issuer's shared document names its issuer that way.
func sameIssuer(configured, doc string) bool {
	if configured == doc {
		return true
	}
	cp, cs, ok := cutPlaceholder(configured)
	if !ok {
		return false
	}
	dp, ds, ok := cutPlaceholder(doc)
	return ok && cp == dp && cs == ds
}

// cutPlaceholder splits s around its one "{name}" placeholder.
func cutPlaceholder(s string) (prefix, suffix string, ok bool) {
	i := strings.IndexByte(s, '{')
	j := strings.IndexByte(s, '}')
	if i < 0 || j < i+2 || strings.ContainsAny(s[j+1:], "{}") || strings.ContainsAny(s[i+1:j], "{/.:") {
		return "", "", false
	}
	return s[:i], s[j+1:], true
}

// fetchURLCheck returns the guards of a configured jwks_url (validate.go),
// for a discovered one: an absolute URL, https when required, its host
// inside every allowlist. Redirects, pins and the size limit apply to it
// as it is fetched with the provider's client and limits.
func fetchURLCheck(requireHTTPS bool, allowlists ...[]string) func(string) error {
	return func(raw string) error {
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			return errors.New("not a URL")
		case !u.IsAbs() || u.Host == "" || u.Hostname() == "":
			return errors.New("not an absolute URL with a host")
		case u.Scheme != "https" && (requireHTTPS || u.Scheme != "http"):
			return fmt.Errorf("%s must use https", redactURL(u))
		}
		host := canonicalHost(u)
		for _, list := range allowlists {
			if len(list) > 0 && !HostAllowed(host, list) {
				return fmt.Errorf("host %q is not inside the allowed domains", host)
			}
		}
		return nil
	}
}

// redactString is redactURL for a URL string.
func redactString(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return redactURL(u)
}

// at returns f fetching uri instead (a discovered jwks_uri).
func (f fetcher) at(uri string) fetcher {
	f.url, f.display = uri, redactString(uri)
	return f
}
