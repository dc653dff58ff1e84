package authz

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/maypok86/otter/v2"

	"github.com/extauthz/extauthz/internal/tenants"
)

// CacheResult says whether a Check was answered from the verified-token
// cache.
type CacheResult uint8

// The cache results.
const (
	CacheNotUsed CacheResult = iota // cache off, or the Check ended before a token was looked up
	CacheHit                        // the token's verification was reused
	CacheMiss                       // looked up and verified in full
)

// TokenCacheObserver is told when the verified-token cache drops a token
// for lack of room (metrics). It must not block.
type TokenCacheObserver interface {
	TokenEvicted(tenantID, providerID string)
}

// tokenCache remembers tokens that passed every token step (package doc,
// steps 3 to 7), so a client sending the same token for its whole lifetime
// costs a SHA-256 and a few map lookups per Check instead of a parse and a
// signature verification. It is keyed by the SHA-256 of the token: the
// token itself is never stored, so the cache holds nothing a client could
// replay, and nothing of it is ever logged.
//
// An entry is used only under the exact conditions that verified it: the
// same provider chosen for this request (providers are rebuilt by every
// reload, so its settings, issuer, audiences and skew are those that
// checked it), and the same key object from the key
// cache (a rotation or removal of the key, or a key set fetched anew,
// yields another object or none). exp, nbf and iat are checked against the
// clock on every hit, with the provider's skew, and the entry is dropped
// when exp (plus skew) has passed. Everything that depends on the request
// rather than the token — tenant, route, token source, claim headers — is
// evaluated on every Check.
//
// The cache is otter (github.com/maypok86/otter/v2): bounded by entry count
// with S3-FIFO eviction, which keeps a hot working set against a scan of
// one-off tokens; reads take no lock shared with writers, so a cache hit
// scales across cores; entries expire on a per-entry deadline (the token's
// exp); and deletions report their cause, which gives the eviction metric.
type tokenCache struct {
	c *otter.Cache[[sha256.Size]byte, *tokenEntry]
}

// Memo holds one value derived from a cached token's claims, built once.
type Memo struct {
	once sync.Once
	v    any
}

// Get returns the value, building it with build the first time.
func (m *Memo) Get(build func() any) any {
	m.once.Do(func() { m.v = build() })
	return m.v
}

// tokenEntry is what verification established about one token.
type tokenEntry struct {
	provider *tenants.ProviderRules
	iss      string
	kid, alg string
	key      crypto.PublicKey // the key that verified the signature
	claims   jwt.MapClaims    // read-only once cached
	// times holds exp, nbf and iat for the per-hit checks, decoded once.
	times claimTimes
	// until is when the entry stops being useful: exp plus skew.
	until time.Time
	memo  Memo // for Decision.ClaimsMemo
	// headers and remove are the allow's claim headers (see allow), made
	// once.
	headersOnce sync.Once
	headers     []Header
	remove      []string
}

func newTokenCache(size int, obs TokenCacheObserver) *tokenCache {
	opts := &otter.Options[[sha256.Size]byte, *tokenEntry]{
		MaximumSize: size,
		ExpiryCalculator: otter.ExpiryCreatingFunc(func(e otter.Entry[[sha256.Size]byte, *tokenEntry]) time.Duration {
			return time.Until(e.Value.until)
		}),
	}
	if obs != nil {
		opts.OnDeletion = func(e otter.DeletionEvent[[sha256.Size]byte, *tokenEntry]) {
			if e.Cause == otter.CauseOverflow {
				obs.TokenEvicted(e.Value.provider.TenantID, e.Value.provider.ID)
			}
		}
	}
	return &tokenCache{c: otter.Must(opts)}
}

// resize sets the bound (limits.token_cache_entries after a reload).
func (tc *tokenCache) resize(size int) { tc.c.SetMaximum(uint64(size)) }

func (tc *tokenCache) get(sum [sha256.Size]byte) (*tokenEntry, bool) { return tc.c.GetIfPresent(sum) }

// put remembers a verified token, unless it has expired already.
func (tc *tokenCache) put(sum [sha256.Size]byte, e *tokenEntry, now time.Time) {
	if !now.Before(e.until) {
		return
	}
	// The cache's own clock is the real one; exp is checked against ours on
	// every hit anyway, so a test clock cannot make an entry outlive it.
	e.until = time.Now().Add(e.until.Sub(now))
	tc.c.Set(sum, e)
}

// newTokenEntry records a verified token with its time claims.
func newTokenEntry(p *tenants.ProviderRules, tok *token, key crypto.PublicKey, times claimTimes) *tokenEntry {
	return &tokenEntry{
		provider: p, iss: tok.iss, kid: tok.kid, alg: tok.method.Alg(), key: key, claims: tok.claims,
		times: times, until: times.exp.Add(p.ClockSkew),
	}
}

// reuse answers a token from its cache entry when the entry applies to this
// request: the provider this request's tenant, route and source choose for
// the token's issuer is the very one that verified it (providers are built
// anew with every tenant set, so this also means "under the same
// configuration"), and the same key is still in the key cache. ok false means the entry does not apply and the token must be
// verified in full; otherwise err is the refusal (a time claim no longer
// valid, or a key lookup failure) or nil.
func (s *Server) reuse(ctx context.Context, st *state, t *tenants.Rules, route *tenants.ProviderRules, src tenants.TokenSource, e *tokenEntry) (p *tenants.ProviderRules, m tenants.IssuerMatch, ok bool, err error) {
	p, m, err = chooseProvider(t, route, &token{iss: e.iss, claims: e.claims}, src)
	if err != nil || p != e.provider {
		return nil, m, false, nil // the full path gives the same refusal
	}
	key, err := s.key(ctx, time.Duration(st.set.Limits().ColdWait), p, e.kid, e.alg)
	if err != nil {
		return p, m, true, err
	}
	if !sameKey(key, e.key) {
		return nil, m, false, nil
	}
	if err := checkClaimValues(p, e.claims, e.times, s.now()); err != nil {
		return p, m, true, err
	}
	return p, m, true, nil
}

// sameKey reports whether a and b are the same key object (not merely equal
// values): the key cache builds new objects for every key set it parses,
// so identity means "the key set that verified this token".
func sameKey(a, b crypto.PublicKey) bool {
	switch x := a.(type) {
	case *rsa.PublicKey:
		y, ok := b.(*rsa.PublicKey)
		return ok && x == y
	case *ecdsa.PublicKey:
		y, ok := b.(*ecdsa.PublicKey)
		return ok && x == y
	case ed25519.PublicKey:
		y, ok := b.(ed25519.PublicKey)
		return ok && len(x) > 0 && len(x) == len(y) && &x[0] == &y[0]
	}
	return false
}

// tokenSum is the SHA-256 of raw, the cache key. The copy of a token of
// usual size stays on the stack, where []byte(raw) would allocate it.
func tokenSum(raw string) [sha256.Size]byte {
	var buf [2048]byte
	if len(raw) <= len(buf) {
		return sha256.Sum256(append(buf[:0], raw...))
	}
	return sha256.Sum256([]byte(raw))
}
