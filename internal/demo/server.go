package demo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Server is the demo identity provider served over HTTPS with a
// certificate from its own throw-away CA.
type Server struct {
	IdP *IdP
	CA  *CA

	base string
	srv  *http.Server
	done chan error

	closeOnce sync.Once
	closeErr  error
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves an IdP whose issuer
// is https://hostname:port/. An empty hostname uses the listener's IP. The
// certificate covers hostname, localhost, 127.0.0.1 and ::1.
func Start(addr, hostname string) (*Server, error) {
	ca, err := NewCA()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo: listen %s: %w", addr, err)
	}
	tcp := ln.Addr().(*net.TCPAddr)
	if hostname == "" {
		hostname = tcp.IP.String()
		if tcp.IP.IsUnspecified() {
			hostname = "127.0.0.1"
		}
	}
	cert, err := ca.ServerCertificate(hostname, "localhost", "127.0.0.1", "::1")
	if err != nil {
		ln.Close()
		return nil, err
	}
	base := "https://" + net.JoinHostPort(hostname, fmt.Sprint(tcp.Port))
	idp, err := NewIdP(IdPOptions{Issuer: base + "/", Audience: Audience})
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{
		IdP:  idp,
		CA:   ca,
		base: base,
		srv: &http.Server{
			Handler:           idp,
			ReadHeaderTimeout: 5 * time.Second,
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			ErrorLog:          slog.NewLogLogger(slog.NewTextHandler(os.Stderr, nil), slog.LevelWarn),
		},
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.ServeTLS(ln, "", "") }()
	return s, nil
}

// URL returns the base URL, "https://host:port".
func (s *Server) URL() string { return s.base }

// JWKSURL returns the URL of the JWK Set.
func (s *Server) JWKSURL() string { return s.base + JWKSPath }

// Close stops the server, waiting up to five seconds for requests in flight.
// Calling it again returns the first call's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := s.srv.Shutdown(ctx)
		if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		s.closeErr = err
	})
	return s.closeErr
}
