package authz

import (
	"errors"
	"fmt"
	"slices"

	"github.com/extauthz/extauthz/internal/tenants"
)

var (
	errRouteProvider = errors.New(`context_extensions "provider" names no provider of the tenant`)
	errNoProvider    = errors.New("no provider of the tenant has the token's issuer")
	errIssMismatch   = errors.New("token issuer differs from the provider named by context_extensions")
	errWrongSource   = errors.New("token found in a source its provider does not read")
)

// routeProvider returns the provider a route pins with
// context_extensions["provider"], or nil when the route pins none. It only
// narrows where the token is looked for (sourcesFor); chooseProvider makes
// the choice.
func routeProvider(t *tenants.Rules, r *Request) (*tenants.ProviderRules, error) {
	id := r.ContextExtensions["provider"]
	if id == "" {
		return nil, nil
	}
	p, ok := t.Provider(id)
	if !ok {
		return nil, errRouteProvider
	}
	return p, nil
}

// sourcesFor returns where to look for the token: the pinned provider's
// sources, else the union of the tenant's (the provider is chosen by the
// token's iss, so the token must be found before the provider is known).
func sourcesFor(t *tenants.Rules, route *tenants.ProviderRules) []tenants.TokenSource {
	if route != nil {
		return route.Sources
	}
	return t.Sources
}

// chooseProvider is the one place a token's provider is chosen: the
// route's, whose issuer iss must then be, else the tenant's provider whose
// issuer is iss (RFC 7519 §4.1.1: compared exactly) or whose
// issuer_template iss matches (its placeholder's value equal to the
// token's claim of that name, and accepted), which must read the source
// src the token came from. The provider is returned with a refusal when it
// is known, so the denial names it; the match carries a template's value.
func chooseProvider(t *tenants.Rules, route *tenants.ProviderRules, tok *token, src tenants.TokenSource) (*tenants.ProviderRules, tenants.IssuerMatch, error) {
	if route != nil {
		m, err := route.MatchIssuer(tok.iss, tok.claims)
		if err != nil {
			return route, m, refuse(ReasonIssuerUnknown, fmt.Errorf("%w: %w", errIssMismatch, err))
		}
		return route, m, nil
	}
	p, m, err := t.ProviderForToken(tok.iss, tok.claims)
	if p == nil {
		return nil, m, refuse(ReasonIssuerUnknown, errNoProvider)
	}
	if err != nil {
		return p, m, refuse(ReasonIssuerUnknown, err)
	}
	if !slices.Contains(p.Sources, src) {
		// The tenant's sources are the union of its providers'; a provider
		// accepts tokens only from its own (one that reads headers must
		// not accept a token from a query string, which leaks into access
		// logs).
		return p, m, refuse(ReasonTokenMissing, errWrongSource)
	}
	return p, m, nil
}

func providerID(p *tenants.ProviderRules) string {
	if p == nil {
		return ""
	}
	return p.ID
}
