// Package demo provides extauthz's built-in demonstration: an identity
// provider that publishes a JWKS over HTTPS and mints tokens, a throw-away
// CA for its certificate, and a tenant configuration that trusts it. The
// `extauthz demo` and `extauthz demo-idp` commands and the end-to-end tests
// use it. It is not an identity provider for production: its /token
// endpoint signs whatever it is asked to.
package demo

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Paths the identity provider serves.
const (
	JWKSPath  = "/.well-known/jwks.json"
	TokenPath = "/token"
)

// IdPOptions configure an IdP.
type IdPOptions struct {
	// Issuer is the iss claim of every token, e.g. "https://127.0.0.1:8443/".
	Issuer string
	// Audience is the aud claim of tokens minted by /token (default "demo-api").
	Audience string
	// Algorithm of the first signing key: RS256, ES256 (default) or EdDSA.
	Algorithm string
	// MaxAge is the JWKS's Cache-Control max-age (default 5 minutes).
	MaxAge time.Duration
	// Now is the clock for iat and exp (default time.Now).
	Now func() time.Time
}

// IdP is a demonstration identity provider. It signs tokens with keys it
// generates and publishes their public halves as a JWK Set (RFC 7517 §5) at
// JWKSPath. It is safe for concurrent use and implements http.Handler.
type IdP struct {
	opts     IdPOptions
	requests atomic.Int64

	reqMu     sync.Mutex
	requested chan struct{} // closed, and replaced, by the next JWKS request

	mu   sync.RWMutex
	keys []signingKey // keys[0] signs new tokens; all are published
	jwks []byte
}

type signingKey struct {
	kid    string
	alg    string
	signer crypto.Signer
}

// NewIdP returns an identity provider with one signing key.
func NewIdP(opts IdPOptions) (*IdP, error) {
	if opts.Issuer == "" {
		return nil, fmt.Errorf("demo: identity provider needs an issuer")
	}
	if opts.Audience == "" {
		opts.Audience = "demo-api"
	}
	if opts.Algorithm == "" {
		opts.Algorithm = "ES256"
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &IdP{opts: opts}
	if _, err := p.Rotate(opts.Algorithm, false); err != nil {
		return nil, err
	}
	return p, nil
}

// Issuer returns the iss claim the provider puts in its tokens.
func (p *IdP) Issuer() string { return p.opts.Issuer }

// Audience returns the aud claim of tokens minted by /token.
func (p *IdP) Audience() string { return p.opts.Audience }

// JWKSRequests counts the requests served at JWKSPath, so tests can prove
// a cache did or did not go back to the identity provider.
func (p *IdP) JWKSRequests() int64 { return p.requests.Load() }

// WaitJWKSRequests waits, woken by each JWKS request, until the JWKS has
// been requested at least n times in all, and returns nil; or until ctx is
// done, and returns ctx's error. Tests wait on it for a cache's background
// fetch instead of polling JWKSRequests.
func (p *IdP) WaitJWKSRequests(ctx context.Context, n int64) error {
	for {
		p.reqMu.Lock()
		if p.requested == nil {
			p.requested = make(chan struct{})
		}
		requested := p.requested
		p.reqMu.Unlock()
		if p.requests.Load() >= n {
			return nil
		}
		select {
		case <-requested:
		case <-ctx.Done():
			return fmt.Errorf("demo: %d of %d JWKS requests: %w", p.requests.Load(), n, ctx.Err())
		}
	}
}

// Rotate generates a new signing key for alg (RS256, ES256 or EdDSA) that
// signs every token from now on. With keepOld the previous keys stay in the
// JWKS (a graceful rotation); without, they are removed, so tokens they
// signed stop verifying once a cache refreshes. It returns the new kid.
func (p *IdP) Rotate(alg string, keepOld bool) (string, error) {
	k, err := newSigningKey(alg)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := []signingKey{k}
	if keepOld {
		keys = append(keys, p.keys...)
	}
	doc, err := marshalJWKS(keys)
	if err != nil {
		return "", err
	}
	p.keys, p.jwks = keys, doc
	return k.kid, nil
}

// KeyID returns the kid of the current signing key.
func (p *IdP) KeyID() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.keys[0].kid
}

// JWKS returns the published document.
func (p *IdP) JWKS() []byte {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return append([]byte(nil), p.jwks...)
}

// Sign signs claims with the current key, setting the kid header.
func (p *IdP) Sign(claims jwt.Claims) (string, error) {
	p.mu.RLock()
	k := p.keys[0]
	p.mu.RUnlock()
	t := jwt.NewWithClaims(jwt.GetSigningMethod(k.alg), claims)
	t.Header["kid"] = k.kid
	s, err := t.SignedString(k.signer)
	if err != nil {
		return "", fmt.Errorf("demo: sign token: %w", err)
	}
	return s, nil
}

// Claims returns the registered claims of a token for sub (RFC 7519 §4.1):
// iss, sub, aud, iat, nbf and exp. A negative lifetime gives a token that
// expired that long ago (issued an hour before it expired).
func (p *IdP) Claims(sub string, lifetime time.Duration) jwt.MapClaims {
	now := p.opts.Now()
	iat := now
	if lifetime < 0 {
		iat = now.Add(lifetime - time.Hour)
	}
	return jwt.MapClaims{
		"iss": p.opts.Issuer,
		"sub": sub,
		"aud": p.opts.Audience,
		"iat": iat.Unix(),
		"nbf": iat.Unix(),
		"exp": now.Add(lifetime).Unix(),
	}
}

// Mint signs a token for sub valid for lifetime (negative: already
// expired), with the extra claims added to the registered ones.
func (p *IdP) Mint(sub string, lifetime time.Duration, extra map[string]any) (string, error) {
	c := p.Claims(sub, lifetime)
	for k, v := range extra {
		c[k] = v
	}
	return p.Sign(c)
}

// ServeHTTP serves the JWKS at JWKSPath and, for the demo only, mints a
// one-hour token at GET TokenPath?sub=NAME&tenant=ID[&email=E][&scope=S][&ttl=60s].
func (p *IdP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case JWKSPath:
		p.requests.Add(1)
		p.reqMu.Lock()
		if p.requested != nil {
			close(p.requested)
			p.requested = nil
		}
		p.reqMu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age="+strconv.Itoa(int(p.opts.MaxAge/time.Second)))
		_, _ = w.Write(p.JWKS())
	case TokenPath:
		p.serveToken(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (p *IdP) serveToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sub := q.Get("sub")
	if sub == "" {
		sub = "demo-user"
	}
	lifetime := time.Hour
	if s := q.Get("ttl"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			http.Error(w, "ttl: "+err.Error(), http.StatusBadRequest)
			return
		}
		lifetime = d
	}
	extra := map[string]any{}
	if t := q.Get("tenant"); t != "" {
		extra["tenant"] = t
	}
	if e := q.Get("email"); e != "" {
		extra["email"] = e
	}
	if sc := q.Get("scope"); sc != "" {
		extra["scope"] = sc
	}
	tok, err := p.Mint(sub, lifetime, extra)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = fmt.Fprintln(w, tok)
}

func newSigningKey(alg string) (signingKey, error) {
	var (
		signer crypto.Signer
		err    error
	)
	switch alg {
	case "RS256":
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		return signingKey{}, fmt.Errorf("demo: unsupported algorithm %q (want RS256, ES256 or EdDSA)", alg)
	}
	if err != nil {
		return signingKey{}, fmt.Errorf("demo: generate %s key: %w", alg, err)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	return signingKey{kid: "demo-" + hex.EncodeToString(id[:]), alg: alg, signer: signer}, nil
}

// marshalJWKS publishes the public halves only: jwkset is handed the public
// key, so private material cannot leak into the document.
func marshalJWKS(keys []signingKey) ([]byte, error) {
	var set jwkset.JWKSMarshal
	for _, k := range keys {
		j, err := jwkset.NewJWKFromKey(k.signer.Public(), jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.ALG(k.alg), KID: k.kid, USE: jwkset.UseSig},
		})
		if err != nil {
			return nil, fmt.Errorf("demo: marshal key %s: %w", k.kid, err)
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	doc, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("demo: marshal JWKS: %w", err)
	}
	return doc, nil
}
