package audit

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/extauthz/extauthz/internal/authz"
	"github.com/extauthz/extauthz/internal/tracing"
)

// Bounds of a record's request fields: each is the client's (or the
// gateway's) and the record must stay one short line.
const (
	maxPath   = 512
	maxHost   = 256
	maxMethod = 16
	maxID     = 128
	maxAddr   = 256
	maxClaim  = 256
)

// Record is one decision as written: one JSON object a line. The claims
// (sub, iss, jti) are those of a verified token, so only allows carry
// them; a denied token's claims are the client's word and are not written.
type Record struct {
	Time          time.Time `json:"time"`
	Tenant        string    `json:"tenant"`
	Provider      string    `json:"provider"`
	Decision      string    `json:"decision"` // allow or deny
	Reason        string    `json:"reason"`
	Status        int       `json:"status"`
	Requirement   string    `json:"requirement,omitempty"` // the route's requirement, a configured name
	WouldDeny     string    `json:"would_deny,omitempty"`  // shadow mode: the reason enforce mode would give
	Sub           string    `json:"sub,omitempty"`
	Iss           string    `json:"iss,omitempty"`
	JTI           string    `json:"jti,omitempty"`
	RequestID     string    `json:"request_id,omitempty"`
	TraceID       string    `json:"trace_id,omitempty"`
	Method        string    `json:"method,omitempty"`
	Host          string    `json:"host,omitempty"`
	Path          string    `json:"path,omitempty"` // without the query, which may carry a token
	ClientAddress string    `json:"client_address,omitempty"`
}

// NewRecord builds the record of d for r at time now. It never copies the
// token, a signature, a header value or the query.
func NewRecord(ctx context.Context, now time.Time, r *authz.Request, d *authz.Decision) Record {
	rec := Record{
		Time:          now.UTC(),
		Tenant:        d.TenantID,
		Provider:      d.ProviderID,
		Decision:      "deny",
		Reason:        string(d.Reason),
		Status:        d.HTTPStatus,
		Requirement:   d.Requirement,
		WouldDeny:     string(d.WouldDeny),
		RequestID:     bounded(r.RequestID, maxID),
		Method:        bounded(r.Method, maxMethod),
		Host:          bounded(r.Host, maxHost),
		Path:          bounded(pathOnly(r.Path), maxPath),
		ClientAddress: bounded(r.ClientAddress, maxAddr),
	}
	if d.Allowed {
		rec.Decision = "allow"
		rec.Sub = claim(d.Claims, "sub")
		rec.Iss = claim(d.Claims, "iss")
		rec.JTI = claim(d.Claims, "jti")
	}
	sc := trace.SpanContextFromContext(ctx) // the decision's span, when traced
	if !sc.IsValid() {
		sc = tracing.Caller(ctx, r) // tracing off: the caller's traceparent or b3
	}
	if sc.IsValid() {
		rec.TraceID = sc.TraceID().String()
	}
	return rec
}

func claim(c map[string]any, name string) string {
	s, _ := c[name].(string)
	return bounded(s, maxClaim)
}

// pathOnly drops the query and fragment.
func pathOnly(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

// bounded cuts s to n bytes.
func bounded(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
