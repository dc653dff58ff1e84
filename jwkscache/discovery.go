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
	issuer       string // as the document names it (sameIssuer with the configured one)
	jwksURI      string
	fetchedAt    time.Time
	expiresAt    time.Time
	etag         string
	lastModified string
	cacheHeader  http.Header
	source       Source
}

// metadata keeps one provider's metadata document. The provider's refresh
// (one at a time) is its only writer; status reads it under mu, which is
// never held across network I/O.
type metadata struct {
	issuer  string
	fetcher fetcher // url is the discovery URL; the provider's client and limits
	// check applies the guards of a configured jwks_url to a discovered one.
	check func(string) error

	// retryDelay is the wait after the n-th failed fetch in a row while a
	// document is held: the provider's failure schedule (failureDelay).
	retryDelay func(n int) time.Duration

	mu       sync.Mutex
	doc      *metadataDoc
	lastErr  error
	unshared *metadataDoc // fetched by this replica and not yet shared (Coordinator)
	// failures counts the fetches that failed in a row while a document
	// was held; the next is not before retryAt. An expired document alone
	// would make every refresh (at least once a second) ask a metadata
	// server that is down.
	failures int
	retryAt  time.Time
}

// jwksURI returns the jwks_uri to fetch keys from, fetching the metadata
// document again (conditionally, RFC 9110 §13.1) when it has expired and
// no failed fetch has put the next one off (retryAt). A failed fetch keeps
// the last verified jwks_uri, so that warm keys go on being refreshed, and
// backs off like a failed key-set refresh; from cold it is an error, which
// the provider reports as ErrUnavailable (and retries on its own failure
// schedule). A coordinated refresh has looked for a newer shared document
// before (provider.adoptShared); this never does, so that a forced refresh
// fetches.
func (m *metadata) jwksURI(ctx context.Context, now time.Time) (string, error) {
	m.mu.Lock()
	old, next := m.doc, m.nextLocked()
	m.mu.Unlock()
	if old != nil && now.Before(next) {
		return old.jwksURI, nil
	}
	doc, err := m.fetch(ctx, now, old)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastErr = err
	if err != nil {
		if old != nil {
			m.failures++
			m.retryAt = now.Add(m.retryDelay(m.failures))
			return old.jwksURI, nil
		}
		return "", fmt.Errorf("metadata %s: %w", m.fetcher.display, err)
	}
	m.doc, m.unshared = doc, doc
	m.failures, m.retryAt = 0, time.Time{}
	return doc.jwksURI, nil
}

// nextLocked is when the document we hold must be fetched (or adopted)
// again: when it expires, or after a failed fetch the retry's time. Zero
// before the first document. m.mu is held.
func (m *metadata) nextLocked() time.Time {
	if m.doc == nil {
		return time.Time{}
	}
	if m.retryAt.After(m.doc.expiresAt) {
		return m.retryAt
	}
	return m.doc.expiresAt
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
	doc := &metadataDoc{fetchedAt: now, expiresAt: now.Add(res.ttl), etag: res.etag, lastModified: res.lastModified, cacheHeader: res.cacheHeader, source: SourceIdentityProvider}
	if res.notModified {
		if old == nil {
			return nil, errors.New("304 Not Modified without a cached document")
		}
		// old passed verify when it was fetched or adopted.
		doc.issuer, doc.jwksURI = old.issuer, old.jwksURI
		if doc.etag == "" {
			doc.etag = old.etag
		}
		if doc.lastModified == "" {
			doc.lastModified = old.lastModified
		}
		return doc, nil
	}
	var body struct {
		Issuer  *string `json:"issuer"`
		JWKSURI *string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil {
		return nil, fmt.Errorf("metadata is not a JSON object: %w", err)
	}
	if body.Issuer == nil {
		return nil, errors.New("metadata has no issuer")
	}
	doc.issuer = *body.Issuer
	if body.JWKSURI != nil {
		doc.jwksURI = *body.JWKSURI
	}
	if _, err := m.verify(doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// verify applies to a document what only the configuration can decide,
// whether it was fetched or read from a coordinator (which is not
// trusted): its issuer must be the configured one and its jwks_uri must
// pass the guards of a configured jwks_url. reason is the Reject* for a
// shared document.
func (m *metadata) verify(doc *metadataDoc) (reason string, err error) {
	if !sameIssuer(m.issuer, doc.issuer) {
		// Compared exactly: OIDC Discovery §4.3, RFC 8414 §3.3. The
		// document's value is not echoed: it is the server's to choose.
		return RejectIssuerMismatch, fmt.Errorf("%w %q", ErrIssuerMismatch, m.issuer)
	}
	if doc.jwksURI == "" {
		return RejectJWKSURI, errors.New("metadata has no jwks_uri")
	}
	if err := m.check(doc.jwksURI); err != nil {
		return RejectJWKSURI, fmt.Errorf("metadata jwks_uri: %w", err)
	}
	return "", nil
}

// adopt makes doc, a shared document that passed fromSharedMetadata, the
// current one when it is newer than ours (fetched later). It reports
// whether it did.
func (m *metadata) adopt(doc *metadataDoc) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.doc != nil && !doc.fetchedAt.After(m.doc.fetchedAt) {
		return false
	}
	m.doc, m.lastErr, m.unshared = doc, nil, nil
	m.failures, m.retryAt = 0, time.Time{}
	return true
}

// takeUnshared returns the document this replica fetched since it last
// shared one (nil if none, or if it has expired), and forgets it.
func (m *metadata) takeUnshared(now time.Time) *metadataDoc {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	doc := m.unshared
	m.unshared = nil
	if doc == nil || !now.Before(doc.expiresAt) {
		return nil
	}
	return doc
}

// due reports whether the document we hold has expired at now, and no
// failed fetch has put the next one off, so must be fetched (or adopted)
// again. Holding none is not due: keys adopted from
// another replica were fetched under the same discovery_url and issuer
// (the trust fingerprint), and the document is needed only when the keys
// are fetched next. m may be nil (no discovery: never).
func (m *metadata) due(now time.Time) bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.doc != nil && !now.Before(m.nextLocked())
}

// expire makes the next refresh fetch the document again (conditionally),
// even while failed fetches back off; m may be nil (no discovery).
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
	m.retryAt = time.Time{}
}

// next returns when the document must be fetched again: when it expires
// or, after failed fetches, when the next retry is (zero before the first
// document).
func (m *metadata) next() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nextLocked()
}

// carry takes over old's document and its retry state, so a replacement
// registered for the same issuer revalidates rather than starts over, and
// does not ask a metadata server that is down sooner than old would have.
func (m *metadata) carry(old *metadata) {
	if old == nil {
		return
	}
	old.mu.Lock()
	doc, failures, retryAt := old.doc, old.failures, old.retryAt
	old.mu.Unlock()
	m.mu.Lock()
	m.doc, m.failures, m.retryAt = doc, failures, retryAt
	m.mu.Unlock()
}

// fill adds the metadata's view to a Status.
func (m *metadata) fill(st *Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st.DiscoveryURL = m.fetcher.display
	if m.doc != nil {
		st.JWKSURI = redactString(m.doc.jwksURI)
		st.MetadataFetchedAt, st.MetadataExpiresAt, st.MetadataSource = m.doc.fetchedAt, m.doc.expiresAt, m.doc.source
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
