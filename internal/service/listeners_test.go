package service

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/demo"
	"github.com/extauthz/extauthz/internal/porttest"
)

// freeAddr is porttest.FreeAddr, short for the tests that start listeners.
func freeAddr(t *testing.T) string { t.Helper(); return porttest.FreeAddr(t) }

// listeners is a running service with its HTTP listeners on known ports.
type listeners struct {
	*running
	http, admin string
}

// runListeners runs the demo configuration with the forward-auth and admin
// listeners on, extra YAML added at the top level, and the given timeouts.
func runListeners(t *testing.T, f *fixture, extra string, timeouts HTTPTimeouts) *listeners {
	t.Helper()
	l := &listeners{http: freeAddr(t), admin: freeAddr(t)}
	cfg := string(demo.Config(demo.ConfigParams{
		GRPCAddr: "127.0.0.1:0",
		Issuer:   f.idp.IdP.Issuer(),
		JWKSURL:  f.idp.JWKSURL(),
		CAFile:   f.caFile,
	}))
	const adminOff = `  admin: ""            # the admin listener is not part of the demo`
	if !strings.Contains(cfg, adminOff) {
		t.Fatalf("the demo config changed; want a line %q", adminOff)
	}
	cfg = strings.Replace(cfg, adminOff, fmt.Sprintf("  admin: %q\n  http: %q", l.admin, l.http), 1)
	if err := os.WriteFile(f.cfgPath, []byte(cfg+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	l.running = runService(t, Options{ConfigPath: f.cfgPath, DrainDelay: -1, HTTPTimeouts: timeouts})
	// The service logs "serving" once a listener's socket is bound, so a
	// connection to it is accepted from then on.
	for name, addr := range map[string]string{"listen.http": l.http, "listen.admin": l.admin} {
		if line := fmt.Sprintf("msg=serving %s=%s", name, addr); !l.running.logs.WaitCount(line, 1, 10*time.Second) {
			t.Fatalf("%s never listened: no %s in\n%s", name, line, l.running.logs.String())
		}
	}
	return l
}

// hostile opens n connections to addr, writes send on each and holds
// them; it returns, per connection, how long after the write the server
// closed it and what the server wrote. A connection the server has not
// closed after limit counts as open (limit turns a hang into a failure).
func hostile(t *testing.T, addr, send string, n int, limit time.Duration) (closedAfter []time.Duration, answers []string) {
	t.Helper()
	closedAfter = make([]time.Duration, n)
	answers = make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if _, err := io.WriteString(c, send); err != nil {
				closedAfter[i] = -1
				return
			}
			_ = c.SetReadDeadline(start.Add(limit))
			b, err := io.ReadAll(c) // returns when the server closes
			answers[i] = string(b)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				closedAfter[i] = limit
				return
			}
			closedAfter[i] = time.Since(start)
		}()
	}
	wg.Wait()
	return closedAfter, answers
}

// maxOf returns the longest duration.
func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// slack is what a loaded test machine may add to a timeout before the
// server's close reaches the client. The timeouts not under test are
// longer than the hold limit, so a missing bound fails.
const (
	slack     = 3 * time.Second
	holdLimit = 15 * time.Second
	long      = time.Minute
)

// TestHTTPListeners_SlowHeadersClosed: hundreds of connections that send
// part of a request's headers, or nothing, are closed by ReadHeaderTimeout
// on both HTTP listeners, while the other timeouts are far away.
func TestHTTPListeners_SlowHeadersClosed(t *testing.T) {
	f := newFixture(t)
	l := runListeners(t, f, "limits: {max_connections: 1000}\n", HTTPTimeouts{ReadHeader: 300 * time.Millisecond, Read: long, Write: long, Idle: long})
	for _, tt := range []struct{ name, addr, send string }{
		{"forward-auth partial headers", l.http, "GET /orders HTTP/1.1\r\nHost: " + demo.Host + "\r\nX-Slow: "},
		{"forward-auth nothing", l.http, ""},
		{"admin partial headers", l.admin, "GET /v1/providers HTTP/1.1\r\nHost: x\r\n"},
		{"admin nothing", l.admin, ""},
	} {
		closed, _ := hostile(t, tt.addr, tt.send, 100, holdLimit)
		if m := maxOf(closed); m > 300*time.Millisecond+slack {
			t.Errorf("%s: the slowest of 100 connections was closed after %s, want within the 300ms header timeout", tt.name, m)
		} else {
			t.Logf("%s: 100 connections closed, the last after %s", tt.name, m)
		}
	}
}

// TestHTTPListeners_SlowBodies: forward-auth answers a request that
// announces a body at once and closes without waiting for the body, even
// with every timeout far away; the admin API, which never reads a body,
// closes such connections at its read timeout.
func TestHTTPListeners_SlowBodies(t *testing.T) {
	t.Run("forward-auth", func(t *testing.T) {
		f := newFixture(t)
		l := runListeners(t, f, "limits: {max_connections: 1000}\n", HTTPTimeouts{ReadHeader: long, Read: long, Write: long, Idle: long})
		for _, te := range []string{"Content-Length: 1000000\r\n", "Transfer-Encoding: chunked\r\n"} {
			send := "POST /orders HTTP/1.1\r\nHost: " + demo.Host + "\r\n" + te + "\r\n" + "1"
			closed, answers := hostile(t, l.http, send, 150, holdLimit)
			if m := maxOf(closed); m > slack {
				t.Errorf("%s: the slowest of 150 connections was closed after %s, want at once", te, m)
			} else {
				t.Logf("%s: 150 connections answered and closed, the last after %s", strings.TrimSpace(te), m)
			}
			for i, a := range answers {
				if !strings.HasPrefix(a, "HTTP/1.1 401 ") {
					t.Fatalf("connection %d: answer %q, want the decision (401 token_missing)", i, a)
				}
			}
		}
	})
	t.Run("admin", func(t *testing.T) {
		f := newFixture(t)
		l := runListeners(t, f, "limits: {max_connections: 1000}\n", HTTPTimeouts{ReadHeader: long, Read: 500 * time.Millisecond, Write: long, Idle: long})
		send := "POST /v1/providers/demo/demo-idp/refresh HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + "1"
		closed, _ := hostile(t, l.admin, send, 150, holdLimit)
		if m := maxOf(closed); m > 500*time.Millisecond+slack {
			t.Errorf("the slowest of 150 connections was closed after %s, want within the 500ms read timeout", m)
		} else {
			t.Logf("150 connections closed, the last after %s", m)
		}
	})
}

// TestHTTPListeners_HeaderBound: a request whose headers exceed
// limits.max_request_header_bytes is refused with 431 on both listeners;
// one within it is served.
func TestHTTPListeners_HeaderBound(t *testing.T) {
	f := newFixture(t)
	l := runListeners(t, f, "limits: {max_request_header_bytes: 8192, max_token_bytes: 4096}\n", HTTPTimeouts{})
	for _, addr := range []string{l.http, l.admin} {
		for _, tt := range []struct {
			size int
			want int
		}{
			{4 << 10, 0}, // served (whatever the answer)
			{8192 + 4096 + 1, http.StatusRequestHeaderFieldsTooLarge}, // net/http's slack is 4096
		} {
			req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = demo.Host
			req.Header.Set("X-Big", strings.Repeat("a", tt.size))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if (res.StatusCode == http.StatusRequestHeaderFieldsTooLarge) != (tt.want == http.StatusRequestHeaderFieldsTooLarge) {
				t.Errorf("%s with a %d-byte header: %d", addr, tt.size, res.StatusCode)
			}
		}
	}
}

// TestHTTPListeners_ConnectionBound: with limits.max_connections 3, three
// silent connections hold every slot, and a fourth client is served only
// once the header timeout closed one of them.
func TestHTTPListeners_ConnectionBound(t *testing.T) {
	const headerTimeout = 500 * time.Millisecond
	f := newFixture(t)
	l := runListeners(t, f, "limits: {max_connections: 3}\n", HTTPTimeouts{ReadHeader: headerTimeout, Read: long, Write: long, Idle: long})
	for range 3 {
		c, err := net.Dial("tcp", l.http)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	c, err := net.Dial("tcp", l.http)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "GET /orders HTTP/1.1\r\nHost: "+demo.Host+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(start.Add(holdLimit))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the fourth client was never served: %v", err)
	}
	res.Body.Close()
	// Served at once would mean a fourth connection was taken while three
	// held every slot; the first slot frees when a silent one times out.
	if waited := time.Since(start); waited < headerTimeout*8/10 {
		t.Fatalf("the fourth client was served after %s, before any silent connection timed out (%s)", waited, headerTimeout)
	} else {
		t.Logf("the fourth client waited %s for a slot", waited)
	}
}

func TestReadAdminToken(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, content, want, wantErr string
	}{
		{"trimmed", "  0123456789abcdef-token\n", "0123456789abcdef-token", ""},
		{"too short", "short\n", "", "holds 5 bytes of token, want at least 16"},
		{"space inside", "0123456789 abcdef", "", "printable ASCII without spaces"},
		{"control byte", "0123456789abcdef\x00", "", "printable ASCII"},
		{"too long", strings.Repeat("a", 5000), "", "larger than 4096 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := dir + "/" + strings.ReplaceAll(tt.name, " ", "_")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readAdminToken(path)
			switch {
			case tt.wantErr == "" && (err != nil || string(got) != tt.want):
				t.Fatalf("readAdminToken = %q, %v; want %q", got, err, tt.want)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("readAdminToken error %v, want %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), tt.content):
				t.Fatalf("the error quotes the file's content: %v", err)
			}
		})
	}
	// -check reports a bad token file like every other problem.
	f := newFixture(t)
	short := dir + "/too_short"
	f.write(t, "admin: {token_file: "+short+"}\n")
	if err := CheckConfig(f.cfgPath); err == nil || !strings.Contains(err.Error(), "admin.token_file: "+short+" holds 5 bytes") {
		t.Fatalf("CheckConfig: %v", err)
	}
}
