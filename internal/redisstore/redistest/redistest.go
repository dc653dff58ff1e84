// Package redistest runs a real redis-server for tests: on a free loopback
// port, without persistence, stopped by t.Cleanup, and able to stop and
// start again on the same port to simulate an outage.
//
// The binary is $EXTAUTHZ_REDIS_SERVER or redis-server on PATH. When it is
// missing the test fails (never skips): run `bash scripts/test.sh`, which
// installs it.
package redistest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/extauthz/extauthz/internal/porttest"
)

// startTimeout bounds how long Start waits for the server to be ready.
const startTimeout = 10 * time.Second

// Server is one redis-server process bound to 127.0.0.1.
type Server struct {
	// Addr is host:port.
	Addr string

	bin string
	dir string

	mu     sync.Mutex
	cmd    *exec.Cmd  // nil while stopped
	exited chan error // receives cmd.Wait's result once
}

// Binary returns the redis-server to run, or fails t saying how to get one.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("EXTAUTHZ_REDIS_SERVER"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("EXTAUTHZ_REDIS_SERVER=%s: %v; run `bash scripts/test.sh`, which installs redis-server", p, err)
		}
		return p
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found (set EXTAUTHZ_REDIS_SERVER or put it on PATH): run `bash scripts/test.sh`, which installs it")
	}
	return p
}

// Start runs a redis-server on a free loopback port and stops it when the
// test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{bin: Binary(t), dir: t.TempDir()}
	var err error
	// The port is free when picked but could be taken before redis binds
	// it; try a few.
	for range 5 {
		s.Addr = porttest.FreeAddr(t)
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() { s.kill() })
	return s
}

// URL returns a redis:// URL for the server's database 0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Stop kills the server (an outage, not a shutdown) and waits for it to exit.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if !s.kill() {
		t.Fatalf("redistest: stop %s: not running", s.Addr)
	}
}

// Restart starts a stopped server again on the same port, empty.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	var err error
	// The old listener's port can linger for a moment after the kill.
	for range 20 {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("redistest: restart: %v", err)
}

// Client returns a plain go-redis client for inspecting the server, closed
// when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("redis-server %s already running", s.Addr)
	}
	host, port, _ := net.SplitHostPort(s.Addr)
	out := &readyWriter{ready: make(chan struct{})}
	cmd := exec.Command(s.bin,
		"--bind", host, "--port", port,
		"--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no", "--loglevel", "notice")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait for this process to say it listens, not for the port to answer:
	// when another redis-server took the port first, this one exits and
	// the port still answers PING, with someone else's data.
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	select {
	case <-out.ready:
		s.cmd, s.exited = cmd, exited
		return nil
	case err := <-exited:
		return fmt.Errorf("redis-server on %s exited: %v: %s", s.Addr, err, out)
	case <-deadline.C:
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("redis-server on %s: not ready after %s: %s", s.Addr, startTimeout, out)
	}
}

// readyLine is what redis-server logs (at notice level) once it accepts
// connections.
const readyLine = "Ready to accept connections"

// readyWriter keeps a redis-server's output and closes ready when the
// server logs readyLine.
type readyWriter struct {
	ready chan struct{} // closed once; never reassigned

	mu   sync.Mutex
	b    bytes.Buffer
	seen bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.b.Write(p)
	if !w.seen && bytes.Contains(w.b.Bytes(), []byte(readyLine)) {
		w.seen = true
		close(w.ready)
	}
	return n, err
}

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// kill stops the server if it runs and reports whether it did.
func (s *Server) kill() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd, s.exited = nil, nil
	return true
}
