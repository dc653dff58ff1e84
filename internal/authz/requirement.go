package authz

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/extauthz/extauthz/internal/tenants"
	"github.com/extauthz/extauthz/internal/urlpath"
)

var errRequirementUnknown = errors.New("context_extensions names a requirement this tenant does not have")

// selectRequirement picks the requirement for r: Envoy's per-route
// context_extensions["requirement"] (an unknown name is a denial, never a
// fall-back); else the first of the tenant's routes matching the normalised
// path and the method; else default_requirement. nil is the baseline: any
// valid token from any of the tenant's providers.
func selectRequirement(t *tenants.Rules, r *Request) (*tenants.RequirementRules, Reason, error) {
	if name := r.ContextExtensions["requirement"]; name != "" {
		if req, ok := t.Requirements[name]; ok {
			return req, ReasonOK, nil
		}
		return nil, ReasonRequirementUnknown, errRequirementUnknown
	}
	if len(t.Routes) > 0 {
		// Routes are matched on the path the upstream will see; a path
		// whose meaning depends on the upstream is refused, not guessed at.
		path, err := urlpath.Normalize(r.Path)
		if err != nil {
			return nil, ReasonPathInvalid, err
		}
		for i := range t.Routes {
			if t.Routes[i].Matches(path, r.Method) {
				return t.Routes[i].Requirement, ReasonOK, nil
			}
		}
	}
	return t.Default, ReasonOK, nil
}

// requirementSources is where to look for the token: the provider a route
// pins, else the providers req accepts (a token in a source only other
// providers read must not hide an accepted one), else every provider of
// the tenant.
func requirementSources(t *tenants.Rules, route *tenants.ProviderRules, req *tenants.RequirementRules) []tenants.TokenSource {
	if route == nil && req != nil && req.Sources != nil {
		return req.Sources
	}
	return sourcesFor(t, route)
}

// requirementName is req's name, "" for the baseline.
func requirementName(req *tenants.RequirementRules) string {
	if req == nil {
		return ""
	}
	return req.Name
}

// meets checks a verified token of provider p against req.
func meets(req *tenants.RequirementRules, p *tenants.ProviderRules, claims map[string]any) Reason {
	if !req.Accepts(p) {
		return ReasonProviderNotAllowed
	}
	for i := range req.Claims {
		if !matchClaim(&req.Claims[i], claims) {
			return ReasonInsufficientScope
		}
	}
	return ReasonOK
}

// matchClaim applies one matcher. A missing claim never matches.
func matchClaim(c *tenants.ClaimRule, claims map[string]any) bool {
	v, ok := c.Path.Lookup(claims)
	if !ok {
		return false
	}
	switch c.Op {
	case tenants.OpEquals:
		return equalJSON(v, c.Values[0])
	case tenants.OpAnyOf:
		for _, want := range c.Values {
			if holds(v, want) {
				return true
			}
		}
	case tenants.OpAllOf:
		for _, want := range c.Values {
			if !holds(v, want) {
				return false
			}
		}
		return true
	}
	return false
}

// holds reports whether claim v is want, has want as an element (an
// array), or has want as a word (a space-delimited string such as OAuth's
// scope, RFC 8693 §4.2).
func holds(v any, want tenants.Value) bool {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if equalJSON(e, want) {
				return true
			}
		}
		return false
	case string:
		if want.Kind != tenants.KindString {
			return false
		}
		if x == want.Str {
			return true
		}
		for rest := x; rest != ""; {
			var w string
			w, rest, _ = strings.Cut(rest, " ")
			if w == want.Str && w != "" {
				return true
			}
		}
		return false
	}
	return equalJSON(v, want)
}

// equalJSON compares a claim value with a configured one of the same JSON
// type: strings and booleans exactly, numbers by value (an integer claim
// decoded as json.Number is compared exactly, as an integer).
func equalJSON(v any, want tenants.Value) bool {
	switch x := v.(type) {
	case string:
		return want.Kind == tenants.KindString && x == want.Str
	case bool:
		return want.Kind == tenants.KindBool && x == want.Bool
	case float64:
		if want.Kind != tenants.KindNumber {
			return false
		}
		f, err := want.Num.Float64()
		return err == nil && x == f
	case json.Number:
		if want.Kind != tenants.KindNumber {
			return false
		}
		if a, err := x.Int64(); err == nil {
			if b, err := want.Num.Int64(); err == nil {
				return a == b
			}
		}
		a, err1 := x.Float64()
		b, err2 := want.Num.Float64()
		return err1 == nil && err2 == nil && a == b
	}
	return false
}

// denyRequirement is the denial of a valid token that does not meet req:
// provider_not_allowed (401, invalid_token) or insufficient_scope (403 with
// RFC 6750 §3.1's challenge naming the scopes req asks for).
func denyRequirement(reason Reason, t *tenants.Rules, p *tenants.ProviderRules, req *tenants.RequirementRules) Decision {
	d := deny(reason, t.ID, p.ID, true)
	d.Requirement = req.Name
	if reason == ReasonInsufficientScope {
		var b strings.Builder
		b.WriteString(`Bearer realm="`)
		b.WriteString(t.ID)
		b.WriteString(`", error="insufficient_scope"`)
		if req.Scope != "" {
			// scope-tokens hold no '"' or '\' (tenants validates them).
			b.WriteString(`, scope="`)
			b.WriteString(req.Scope)
			b.WriteString(`"`)
		}
		d.WWWAuthenticate = b.String()
	}
	return d
}

// allowWithoutToken is the allow of a request that has no valid token:
// allow_missing without a token, or a shadow-mode denial. No claim header
// is set and every one any tenant maps is removed.
func allowWithoutToken(st *state, t *tenants.Rules) Decision {
	d := Decision{
		Allowed:       true,
		HTTPStatus:    ReasonOK.HTTPStatus(),
		Reason:        ReasonOK,
		TenantID:      t.ID,
		Anonymous:     true,
		RemoveHeaders: slices.Clone(st.set.ClaimHeaders()),
	}
	if h := st.set.TenantHeader(); h != "" {
		d.Headers = []Header{{Name: h, Value: t.ID}}
	}
	return d
}

// shadow turns a denial d of a tenant in shadow mode into an allow that
// records it as WouldDeny.
func shadow(st *state, t *tenants.Rules, d Decision) Decision {
	a := allowWithoutToken(st, t)
	a.ProviderID = d.ProviderID
	a.Requirement = d.Requirement
	a.WouldDeny = d.Reason
	return a
}
