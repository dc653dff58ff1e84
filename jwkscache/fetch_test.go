package jwkscache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

const testMaxBytes = 4096

func TestRefresh_ErrorsKeepPreviousSetServing(t *testing.T) {
	k := newECKey(t)
	doc := jwksDoc(t, jwkJSON(t, &k.PublicKey, "k1", ""))
	big := append(append([]byte(`{"keys":[`), bytes.Repeat([]byte(" "), 2*testMaxBytes)...), []byte(`]}`)...)
	for _, tc := range []struct {
		name    string
		handler func(srv *jwksServer) http.HandlerFunc
		want    string
	}{
		{"oversized body with honest Content-Length", func(*jwksServer) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(big)))
				_, _ = w.Write(big)
			}
		}, "exceeds max_response_bytes"},
		{"oversized chunked body without Content-Length", func(*jwksServer) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				for i := 0; i < len(big); i += 512 {
					_, _ = w.Write(big[i:min(i+512, len(big))])
					w.(http.Flusher).Flush()
				}
			}
		}, "exceeds max_response_bytes"},
		{"reading stops at the limit while the server keeps sending", func(*jwksServer) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(big[:testMaxBytes+1])
				w.(http.Flusher).Flush()
				<-r.Context().Done() // never finishes on its own
			}
		}, "exceeds max_response_bytes"},
		{"invalid JSON", func(*jwksServer) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"keys": [`)) }
		}, "invalid JWKS JSON"},
		{"no keys member", func(*jwksServer) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"other": []}`)) }
		}, `no "keys" member`},
		{"no usable key", func(*jwksServer) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}`))
			}
		}, "no usable key"},
		{"server error names the status", func(*jwksServer) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }
		}, "unexpected HTTP status 503"},
		{"redirect outside the allowlist", func(srv *jwksServer) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)+"/jwks", http.StatusFound)
			}
		}, `redirect to host "localhost" outside the allowed domains`},
		{"more redirects than allowed", func(srv *jwksServer) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, srv.URL+"/loop"+r.URL.Path, http.StatusFound)
			}
		}, "more than max_redirects 2 redirects"},
		{"redirect to http", func(srv *jwksServer) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, strings.Replace(srv.URL, "https://", "http://", 1)+"/jwks", http.StatusFound)
			}
		}, "redirect to non-https URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, doc)
			f := newFixture(t, srv)
			f.register(t, func(r *jwkscache.Registration) {
				r.AllowedDomains = []string{"127.0.0.1"}
				r.MaxRedirects = 2
				r.MaxResponseBytes = testMaxBytes
			})
			srv.set(func(s *jwksServer) { s.handler = tc.handler(srv) })
			err := f.reg.Refresh(context.Background(), "acme", "main")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Refresh error = %v, want it to mention %q", err, tc.want)
			}
			f.mustKey(t, "k1", k)
			st := f.status(t)
			if st.ConsecutiveErrors != 1 || st.RefreshErrors != 1 || !strings.Contains(st.LastError, tc.want) || st.State != jwkscache.StateReady {
				t.Fatalf("status = %+v", st)
			}
		})
	}
}

func TestRefresh_RedirectsWithinLimitsAreFollowed(t *testing.T) {
	k, srv := newKeyServer(t)
	srv.serve(func(w http.ResponseWriter, r *http.Request, doc []byte) {
		if strings.Count(r.URL.Path, "/hop") < 2 {
			http.Redirect(w, r, "/hop"+r.URL.Path, http.StatusFound)
			return
		}
		_, _ = w.Write(doc)
	})
	f := newFixture(t, srv)
	if ev := f.register(t, func(r *jwkscache.Registration) {
		r.AllowedDomains = []string{"127.0.0.1"}
		r.MaxRedirects = 2
	}); ev.Err != nil {
		t.Fatal(ev.Err)
	}
	f.mustKey(t, "k1", k)
}

func TestRefresh_SPKIPinning(t *testing.T) {
	k := newECKey(t)
	doc := jwksDoc(t, jwkJSON(t, &k.PublicKey, "k1", ""))
	probe := newJWKSServer(t, doc)
	sum := sha256.Sum256(probe.Certificate().RawSubjectPublicKeyInfo)
	other := sha256.Sum256([]byte("another key"))
	for _, tc := range []struct {
		name string
		pins []string
		ok   bool
	}{
		{"matching pin in base64", []string{base64.StdEncoding.EncodeToString(sum[:])}, true},
		{"matching pin in hex among others", []string{hex.EncodeToString(other[:]), hex.EncodeToString(sum[:])}, true},
		{"pin mismatch", []string{base64.StdEncoding.EncodeToString(other[:])}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, doc)
			f := newFixture(t, srv)
			ev := f.register(t, func(r *jwkscache.Registration) { r.PinnedSPKI = tc.pins })
			_, err := f.key("k1", "ES256")
			if tc.ok {
				if ev.Err != nil || err != nil {
					t.Fatalf("fetch error %v, lookup error %v", ev.Err, err)
				}
				return
			}
			wantErr(t, err, jwkscache.ErrUnavailable)
			if !strings.Contains(err.Error(), "pinned_spki") {
				t.Fatalf("error %v does not mention pinned_spki", err)
			}
			// Checked during the handshake: the request never reached the server.
			if got := srv.hits.Load(); got != 0 {
				t.Fatalf("server saw %d requests, want 0", got)
			}
		})
	}
}

func TestRegister_PlainHTTP(t *testing.T) {
	k := newECKey(t)
	doc := jwksDoc(t, jwkJSON(t, &k.PublicKey, "k1", ""))
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(doc) }))
	t.Cleanup(plain.Close)

	strict, err := jwkscache.New(jwkscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = strict.Close() })
	err = strict.Register(context.Background(), strict.NewRegistration("acme", "main", plain.URL))
	if err == nil || !strings.Contains(err.Error(), "jwks_url: must use https") {
		t.Fatalf("http:// with HTTPS required: error = %v", err)
	}

	lax, err := jwkscache.New(jwkscache.Options{InsecureAllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lax.Close() })
	reg := lax.NewRegistration("acme", "main", plain.URL)
	reg.RequireHTTPS = false
	if err := lax.Register(context.Background(), reg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := lax.Key(ctx, "acme", "main", "k1", "ES256"); err != nil {
		t.Fatal(err)
	}
}
