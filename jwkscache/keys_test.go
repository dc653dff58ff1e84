package jwkscache_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/extauthz/extauthz/internal/keytest"
	"github.com/extauthz/extauthz/jwkscache"
)

// logSink is a slog.Handler that records what the cache logs, one line
// per record: the message and its attributes as a JSON array of keys and
// values.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logSink) WithGroup(string) slog.Handler            { return l }
func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	var args []any
	r.Attrs(func(a slog.Attr) bool {
		args = append(args, a.Key, a.Value.Any())
		return true
	})
	b, _ := json.Marshal(args)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, r.Message+" "+string(b))
	return nil
}

// registerSkipping registers a provider serving doc, with a registry that
// logs to the returned logSink, and checks that its first refresh kept
// kept keys and skipped skipped.
func registerSkipping(t *testing.T, doc []byte, kept int, skipped uint64) (*fixture, *logSink) {
	t.Helper()
	logs := &logSink{}
	f := newFixture(t, newJWKSServer(t, doc), func(o *jwkscache.Options) { o.Logger = slog.New(logs) })
	if ev := f.register(t); ev.Err != nil || ev.Keys != kept {
		t.Fatalf("refresh = %+v, want %d keys", ev, kept)
	}
	if st := f.status(t); st.SkippedKeys != skipped {
		t.Fatalf("SkippedKeys = %d, want %d", st.SkippedKeys, skipped)
	}
	return f, logs
}

func TestParse_BadKeysSkippedOthersKept(t *testing.T) {
	good := newECKey(t)
	p384 := keytest.P384()
	edPub := keytest.Ed25519().Public().(ed25519.PublicKey)
	doc := jwksDoc(t,
		jwkJSON(t, &good.PublicKey, "good", ""),
		json.RawMessage(`{"kty":"EC","crv":"P-256","kid":"bad-point","x":"AAAA","y":"AAAA"}`),
		json.RawMessage(`{"kty":"oct","kid":"hmac","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ"}`),
		jwkJSON(t, &keytest.RSA(1024).PublicKey, "rsa-1024", ""),
		jwkscache.SetJWKMember(t, jwkJSON(t, &p384.PublicKey, "enc", ""), "use", "enc"),
		jwkscache.SetJWKMember(t, jwkJSON(t, &p384.PublicKey, "sign-only", ""), "key_ops", []string{"sign"}),
		jwkJSON(t, &p384.PublicKey, "alg-mismatch", "RS256"),
		json.RawMessage(`{"kty":"OKP","crv":"X25519","kid":"x25519","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}`),
		json.RawMessage(`{"kty":"EC","kid":5}`),
		json.RawMessage(`"not an object"`),
		jwkJSON(t, edPub, "ed", ""),
		jwkscache.MarshalJWK(t, good, "with-private", "", true),
	)
	f, logs := registerSkipping(t, doc, 3, 9)
	f.mustKey(t, "good", good)
	if k, err := f.key("ed", "EdDSA"); err != nil || !edPub.Equal(k) {
		t.Fatalf("ed25519 key: %v", err)
	}
	// Private material in a JWKS: only the public part is ever used.
	k, err := f.key("with-private", "ES256")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := k.(*ecdsa.PublicKey); !ok {
		t.Fatalf("key with private material resolved to %T, want *ecdsa.PublicKey", k)
	}
	for _, kid := range []string{"bad-point", "hmac", "rsa-1024", "enc", "sign-only", "alg-mismatch", "x25519"} {
		for _, alg := range []string{"ES256", "ES384", "RS256", "HS256", "EdDSA"} {
			if _, err := f.key(kid, alg); !errors.Is(err, jwkscache.ErrKeyNotFound) {
				t.Fatalf("refused key %q (alg %s) resolved: %v", kid, alg, err)
			}
		}
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	all := strings.Join(logs.lines, "\n")
	for _, want := range []string{`symmetric key (kty \"oct\") refused`, "RSA key of 1024 bits refused", `"kid","rsa-1024"`, `key use \"enc\"`} {
		if !strings.Contains(all, want) {
			t.Errorf("logs do not mention %s:\n%s", want, all)
		}
	}
	if strings.Contains(all, "c2VjcmV0") {
		t.Error("logs contain key material")
	}
}

func TestKey_AlgFitness(t *testing.T) {
	ec := newECKey(t)
	p384, p521 := keytest.P384(), keytest.P521()
	edPub := keytest.Ed25519().Public().(ed25519.PublicKey)
	rk := keytest.RSA2048()
	doc := jwksDoc(t,
		jwkJSON(t, &rk.PublicKey, "rsa", ""),
		jwkJSON(t, &rk.PublicKey, "rsa-rs256", "RS256"),
		jwkJSON(t, &ec.PublicKey, "p256", ""),
		jwkJSON(t, &p384.PublicKey, "p384", ""),
		jwkJSON(t, &p521.PublicKey, "p521", ""),
		jwkJSON(t, edPub, "ed", ""),
	)
	srv := newJWKSServer(t, doc)
	f := newFixture(t, srv)
	f.register(t)
	for _, tc := range []struct {
		kid, alg string
		want     crypto.PublicKey // nil: ErrKeyNotFound
	}{
		{"rsa", "RS256", &rk.PublicKey},
		{"rsa", "RS512", &rk.PublicKey},
		{"rsa", "PS256", &rk.PublicKey},
		{"rsa", "PS384", &rk.PublicKey},
		{"rsa", "ES256", nil},
		{"rsa", "HS256", nil},
		{"rsa", "none", nil},
		{"rsa-rs256", "RS256", &rk.PublicKey},
		{"rsa-rs256", "PS256", nil},
		{"p256", "ES256", &ec.PublicKey},
		{"p256", "ES384", nil},
		{"p384", "ES384", &p384.PublicKey},
		{"p384", "ES256", nil},
		{"p521", "ES512", &p521.PublicKey},
		{"ed", "EdDSA", edPub},
		{"ed", "ES256", nil},
	} {
		t.Run(tc.kid+"/"+tc.alg, func(t *testing.T) {
			got, err := f.key(tc.kid, tc.alg)
			if tc.want == nil {
				wantErr(t, err, jwkscache.ErrKeyNotFound)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want.(interface{ Equal(crypto.PublicKey) bool }).Equal(got) {
				t.Fatal("wrong key")
			}
		})
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("known kids with an unfit alg triggered refreshes: %d requests", got)
	}
}

func TestKey_EmptyKIDMatchesOnlyASingleFittingKey(t *testing.T) {
	a, b := newECKey(t), newECKey(t)
	p384 := keytest.P384()
	srv := newJWKSServer(t, jwksDoc(t, jwkJSON(t, &a.PublicKey, "a", ""), jwkJSON(t, &p384.PublicKey, "c", "")))
	f := newFixture(t, srv)
	f.register(t)
	f.mustKey(t, "", a) // one ES256 key, one ES384 key: unambiguous
	srv.set(func(s *jwksServer) {
		s.doc = jwksDoc(t, jwkJSON(t, &a.PublicKey, "a", ""), jwkJSON(t, &b.PublicKey, "b", ""))
	})
	if err := f.reg.Refresh(t.Context(), "acme", "main"); err != nil {
		t.Fatal(err)
	}
	_, err := f.key("", "ES256")
	wantErr(t, err, jwkscache.ErrKeyNotFound)
}

func TestParse_NeverFetchesX5U(t *testing.T) {
	k := newECKey(t)
	srv := newJWKSServer(t, nil)
	var x5uHits atomic.Int64
	raw := jwkJSON(t, &k.PublicKey, "k1", "")
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["x5u"] = srv.URL + "/x5u"
	raw, _ = json.Marshal(m)
	doc := jwksDoc(t, raw)
	srv.set(func(s *jwksServer) {
		s.handler = func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/x5u" {
				x5uHits.Add(1)
				w.WriteHeader(http.StatusNotFound)
				return
			}
			_, _ = w.Write(doc)
		}
	})
	f := newFixture(t, srv)
	f.register(t)
	f.mustKey(t, "k1", k)
	if got := x5uHits.Load(); got != 0 {
		t.Fatalf("x5u fetched %d times", got)
	}
}
