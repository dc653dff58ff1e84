package jwkscache_test

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/logtest"
	"github.com/extauthz/extauthz/jwkscache"
)

// TestRefresh_URLCredentialsNeverInErrors: a JWKS URL's user info and query
// (where identity providers put client secrets) appear in no error, no
// status and no log line, whichever way a fetch fails: the client's own
// *url.Error, each of the redirect guard's refusals, and validation.
func TestRefresh_URLCredentialsNeverInErrors(t *testing.T) {
	const secret = "s3cr3t-hunter2"
	redirectTo := func(target func(srv *jwksServer) string) func(srv *jwksServer) http.HandlerFunc {
		return func(srv *jwksServer) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, target(srv), http.StatusFound) }
		}
	}
	for _, tc := range []struct {
		name    string
		handler func(srv *jwksServer) http.HandlerFunc
		closed  bool   // the server is gone: the client's dial error
		want    string // the error still says what went wrong
	}{
		{"connection refused", nil, true, "connect"},
		{"redirect to http", redirectTo(func(srv *jwksServer) string {
			return strings.Replace(srv.URL, "https://", "http://user:"+secret+"@", 1) + "/jwks?key=" + secret
		}), false, "redirect to non-https URL"},
		{"redirect outside the allowlist", redirectTo(func(srv *jwksServer) string {
			return strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/jwks?key=" + secret
		}), false, "outside the allowed domains"},
		{"too many redirects", redirectTo(func(srv *jwksServer) string {
			return srv.URL + "/again?key=" + secret
		}), false, "more than max_redirects"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, []byte(`{"keys":[]}`))
			if tc.handler != nil {
				srv.set(func(s *jwksServer) { s.handler = tc.handler(srv) })
			}
			var logs logtest.Buffer
			f := newFixture(t, srv, func(o *jwkscache.Options) { o.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
			u, err := url.Parse(srv.url())
			if err != nil {
				t.Fatal(err)
			}
			u.User = url.UserPassword("client", secret)
			u.RawQuery = "client_secret=" + secret
			if tc.closed {
				srv.Close()
			}
			ev := f.register(t, func(r *jwkscache.Registration) {
				r.JWKSURL = u.String()
				r.AllowedDomains = []string{"127.0.0.1"}
				r.MaxRedirects = 1
			})
			errs := map[string]string{"refresh event": "<nil>", "status": f.status(t).LastError, "log": logs.String()}
			if ev.Err != nil {
				errs["refresh event"] = ev.Err.Error()
			}
			if _, err := f.key("k1", "ES256"); err != nil {
				errs["lookup"] = err.Error()
			}
			if !strings.Contains(errs["refresh event"], tc.want) {
				t.Errorf("refresh error %q does not say %q", errs["refresh event"], tc.want)
			}
			for where, text := range errs {
				if strings.Contains(text, secret) {
					t.Errorf("%s carries the URL's credentials: %s", where, text)
				}
			}
		})
	}
}

// TestValidate_URLCredentialsNotQuoted: a jwks_url that fails validation is
// described without its user info or query.
func TestValidate_URLCredentialsNotQuoted(t *testing.T) {
	const secret = "s3cr3t-hunter2"
	reg, err := jwkscache.New(jwkscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	for _, raw := range []string{
		"https://user:" + secret + "@/jwks?key=" + secret,                // no host
		"/jwks?key=" + secret,                                            // not absolute
		"https://user:" + secret + "@idp.example:bad/jwks?key=" + secret, // does not parse
	} {
		err := reg.Validate(reg.NewRegistration("acme", "main", raw))
		if err == nil || !strings.Contains(err.Error(), "jwks_url") {
			t.Fatalf("Validate(%q) = %v, want a jwks_url error", raw, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Validate error carries the URL's credentials: %v", err)
		}
	}
}
