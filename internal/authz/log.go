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

// The tenant and provider a log line (and a metric label) names for a
// decision that matched none: the same placeholders everywhere.
const (
	NoTenant   = "unknown"
	NoProvider = "none"
)

// logDecision logs d: denials (and shadow mode's would-be denials) at Info,
// at most Options.DenialLogLimit lines per reason and second (see
// logLimiter), allows at Debug. The token and
// the query (which may carry it) are never logged; err is an internal cause
// built from fixed texts and library errors, never from the token.
func (s *Server) logDecision(ctx context.Context, r *Request, d *Decision, err error, elapsed time.Duration) {
	level := slog.LevelInfo
	if d.Allowed && d.WouldDeny == "" {
		level = slog.LevelDebug
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	var suppressed int
	if level == slog.LevelInfo {
		// Denials, and shadow mode's would-be denials (a budget of their
		// own), are what a flood multiplies.
		key := d.Reason
		if d.Allowed {
			key = "would_deny:" + d.WouldDeny
		}
		var ok bool
		if ok, suppressed = s.denialLog.allow(key); !ok {
			return
		}
	}
	attrs := []slog.Attr{
		slog.String("tenant", orPlaceholder(d.TenantID, NoTenant)),
		slog.String("provider", orPlaceholder(d.ProviderID, NoProvider)),
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
	if suppressed > 0 {
		// Lines of this reason left out since the last one written.
		attrs = append(attrs, slog.Int("suppressed_before", suppressed))
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

func orPlaceholder(id, placeholder string) string {
	if id == "" {
		return placeholder
	}
	return id
}
