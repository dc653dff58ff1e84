package authz

import (
	"context"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"
)

// maxLogValue bounds each request-derived value a log line quotes (path,
// method, request id, the error with its kid): a client that sends a 1 MB
// path must not write 1 MB of log.
const maxLogValue = 256

// clip returns s cut to maxLogValue bytes at a UTF-8 boundary, its full
// length noted, so a cut value is never mistaken for the whole.
func clip(s string) string {
	if len(s) <= maxLogValue {
		return s
	}
	n := maxLogValue
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "...(" + strconv.Itoa(len(s)) + " bytes)"
}

// logDecision logs d: denials at Info, allows at Debug. The token and the
// query (which may carry it) are never logged; err is an internal cause
// built from fixed texts and library errors, never from the token.
func (s *Server) logDecision(ctx context.Context, r *Request, d *Decision, err error, elapsed time.Duration) {
	level := slog.LevelInfo
	if d.Allowed && d.WouldDeny == "" {
		level = slog.LevelDebug
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("tenant", d.TenantID),
		slog.String("provider", d.ProviderID),
		slog.String("reason", string(d.Reason)),
		slog.Int("status", d.HTTPStatus),
		slog.Duration("latency", elapsed),
		slog.String("request_id", clip(r.RequestID)),
		slog.String("method", clip(r.Method)),
		slog.String("path", clip(pathOnly(r.Path))),
	}
	if d.Requirement != "" {
		attrs = append(attrs, slog.String("requirement", d.Requirement))
	}
	if d.Anonymous {
		attrs = append(attrs, slog.Bool("anonymous", true))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", clip(err.Error())))
	}
	msg := "denied"
	switch {
	case d.WouldDeny != "":
		// Shadow mode: allowed, but this is the denial an operator
		// onboarding the tenant needs to see.
		msg = "would deny (shadow mode)"
		attrs = append(attrs, slog.String("would_deny", string(d.WouldDeny)))
	case d.Allowed:
		msg = "allowed"
	}
	s.log.LogAttrs(ctx, level, msg, attrs...)
}
