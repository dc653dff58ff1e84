package tenants

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/extauthz/extauthz/internal/urlpath"
)

// The tenant modes.
const (
	ModeEnforce = "enforce" // denials are denials (the default)
	ModeShadow  = "shadow"  // denials are logged, counted and allowed
)

// Requirement is what a route demands of a request, beyond "a valid token
// from one of the tenant's providers".
type Requirement struct {
	// Providers are the provider ids whose tokens are accepted (any of
	// them); empty means every provider of the tenant.
	Providers []string `yaml:"providers"`
	// Claims must all hold.
	Claims []ClaimMatcher `yaml:"claims"`
	// AllowMissing lets a request without any token through, anonymously;
	// a token that is sent must still be valid and meet Providers and Claims.
	AllowMissing bool `yaml:"allow_missing"`
}

// ClaimMatcher tests one claim. Exactly one of Equals, AnyOf and AllOf is
// set.
type ClaimMatcher struct {
	// Claim is a dotted path into the claims ("org.tier"); a top-level
	// claim whose own name contains a dot is addressed as written.
	Claim  string  `yaml:"claim"`
	Equals *Value  `yaml:"equals"`
	AnyOf  []Value `yaml:"any_of"`
	AllOf  []Value `yaml:"all_of"`
}

// Route picks a requirement by path and method when Envoy names none.
type Route struct {
	// PathPrefix is matched as a string prefix of the normalised path
	// (internal/urlpath), like Envoy's route prefix; it must itself be
	// normal.
	PathPrefix string `yaml:"path_prefix"`
	// Methods are matched case-sensitively (RFC 9110 §9.1); empty means any.
	Methods []string `yaml:"methods"`
	// Requirement names one of the tenant's requirements; "" is the
	// baseline (any valid token of the tenant's providers).
	Requirement string `yaml:"requirement"`
}

// ValueKind is the JSON type of a Value.
type ValueKind uint8

// The JSON scalar types a matcher can compare.
const (
	KindString ValueKind = iota + 1
	KindNumber
	KindBool
)

// Value is a scalar from the configuration kept with its JSON type, so
// that equals: 3 matches the number 3 and not the string "3".
type Value struct {
	Kind ValueKind
	Str  string      // KindString
	Num  json.Number // KindNumber, as written
	Bool bool        // KindBool
}

// UnmarshalYAML reads a YAML string, number or boolean. Quoted scalars are
// strings ("3" is the string 3).
func (v *Value) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a string, number or boolean", n.Line)
	}
	switch n.ShortTag() {
	case "!!str":
		*v = Value{Kind: KindString, Str: n.Value}
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return err
		}
		*v = Value{Kind: KindBool, Bool: b}
	case "!!int", "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("line %d: %q is not a finite number", n.Line, n.Value)
		}
		text := n.Value
		if !jsonNumberRe.MatchString(text) {
			// A YAML spelling JSON lacks (0x10, +1, 1e3 is fine): keep the value.
			text = strconv.FormatFloat(f, 'g', -1, 64)
		}
		*v = Value{Kind: KindNumber, Num: json.Number(text)}
	default:
		return fmt.Errorf("line %d: want a string, number or boolean, not %s", n.Line, n.ShortTag())
	}
	return nil
}

// MarshalYAML writes the value with its type.
func (v Value) MarshalYAML() (any, error) {
	switch v.Kind {
	case KindString:
		return v.Str, nil
	case KindBool:
		return v.Bool, nil
	case KindNumber:
		if i, err := v.Num.Int64(); err == nil {
			return i, nil
		}
		return v.Num.Float64()
	}
	return nil, nil
}

// String renders the value as JSON would.
func (v Value) String() string {
	switch v.Kind {
	case KindString:
		return strconv.Quote(v.Str)
	case KindBool:
		return strconv.FormatBool(v.Bool)
	}
	return string(v.Num)
}

// ClaimPath is a dotted claim path ("org.tier").
type ClaimPath string

// Lookup returns the value at the path: the top-level claim named exactly
// so when there is one, else the walk through nested objects, one segment
// per dot. A missing claim, or a JSON null, is not found. It does not
// allocate.
func (c ClaimPath) Lookup(claims map[string]any) (any, bool) {
	if v, ok := claims[string(c)]; ok && v != nil {
		return v, true
	}
	first, rest, nested := strings.Cut(string(c), ".")
	if !nested {
		return nil, false
	}
	cur, ok := claims[first]
	for ok && cur != nil {
		m, isObj := cur.(map[string]any)
		if !isObj {
			return nil, false
		}
		var seg string
		seg, rest, nested = strings.Cut(rest, ".")
		cur, ok = m[seg]
		if !nested {
			return cur, ok && cur != nil
		}
	}
	return nil, false
}

// MatchOp is a ClaimRule's comparison.
type MatchOp uint8

// The comparisons of a claim matcher.
const (
	OpEquals MatchOp = iota + 1 // the claim is the value, with the same JSON type
	OpAnyOf                     // the claim, an element of it, or a word of it is one of the values
	OpAllOf                     // the claim's elements or words include every value
)

// ClaimRule is a compiled ClaimMatcher.
type ClaimRule struct {
	Path   ClaimPath
	Op     MatchOp
	Values []Value
}

// RequirementRules are one compiled requirement. They are read-only.
type RequirementRules struct {
	Name string
	// Providers accepted; nil means every provider of the tenant.
	Providers []*ProviderRules
	// Sources are the token sources of Providers, in provider order (nil
	// with Providers): a token in a source only other providers read is
	// not looked at.
	Sources      []TokenSource
	Claims       []ClaimRule
	AllowMissing bool
	// Scope is the space-separated scope values the claim matchers on
	// "scope" or "scp" ask for, for RFC 6750 §3's scope attribute of an
	// insufficient_scope challenge ("" when none).
	Scope string
}

// Accepts reports whether tokens of p meet the requirement's providers.
func (r *RequirementRules) Accepts(p *ProviderRules) bool {
	return r.Providers == nil || slices.Contains(r.Providers, p)
}

// RouteRule is a compiled Route.
type RouteRule struct {
	PathPrefix string
	Methods    []string
	// Requirement is nil for the baseline.
	Requirement *RequirementRules
}

// Matches reports whether a request with the normalised path and method
// takes this route.
func (r *RouteRule) Matches(path, method string) bool {
	return strings.HasPrefix(path, r.PathPrefix) && (len(r.Methods) == 0 || slices.Contains(r.Methods, method))
}

// jsonNumberRe is RFC 8259 §6's number.
var jsonNumberRe = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

var requirementNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// scopeClaims are the claims whose matcher values are OAuth scopes (RFC
// 6749 §3.3's "scope"; "scp" is a common spelling of the same).
func isScopeClaim(name string) bool { return name == "scope" || name == "scp" }

// validScopeToken reports RFC 6749 §3.3's scope-token: %x21 / %x23-5B /
// %x5D-7E, which is also safe inside RFC 6750 §3's quoted scope attribute.
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// validateRequirements checks a tenant's requirements, routes,
// default_requirement and mode.
func (t *Tenant) validateRequirements(v *validator, tp string) {
	switch t.Mode {
	case "", ModeEnforce, ModeShadow:
	default:
		v.add(tp+".mode", fmt.Sprintf("%q must be enforce or shadow", t.Mode))
	}
	providers := map[string]bool{}
	for _, p := range t.Providers {
		providers[p.ID] = true
	}
	for _, name := range sortedKeys(t.Requirements) {
		r := t.Requirements[name]
		rp := fmt.Sprintf("%s.requirements.%s", tp, name)
		if !requirementNameRe.MatchString(name) {
			v.add(rp, fmt.Sprintf("requirement name %q must be 1-64 characters of A-Z, a-z, 0-9, '-' and '_'", name))
		}
		seen := map[string]bool{}
		for k, id := range r.Providers {
			pp := fmt.Sprintf("%s.providers[%d]", rp, k)
			switch {
			case !providers[id]:
				v.add(pp, fmt.Sprintf("%q is not a provider of this tenant", id))
			case seen[id]:
				v.add(pp, fmt.Sprintf("provider %q listed twice", id))
			}
			seen[id] = true
		}
		if r.Providers != nil && len(r.Providers) == 0 {
			v.add(rp+".providers", "must not be empty (leave it out to accept every provider)")
		}
		for k, m := range r.Claims {
			m.validate(v, fmt.Sprintf("%s.claims[%d]", rp, k))
		}
	}
	for k, rt := range t.Routes {
		rtp := fmt.Sprintf("%s.routes[%d]", tp, k)
		switch n, err := urlpath.Normalize(rt.PathPrefix); {
		case rt.PathPrefix == "":
			v.add(rtp+".path_prefix", "required (\"/\" matches every path)")
		case err != nil || strings.ContainsAny(rt.PathPrefix, "?#"):
			v.add(rtp+".path_prefix", fmt.Sprintf("%q is not a path", rt.PathPrefix))
		case n != rt.PathPrefix:
			v.add(rtp+".path_prefix", fmt.Sprintf("%q is not in normal form and would never match; write %q", rt.PathPrefix, n))
		}
		for j, m := range rt.Methods {
			mp := fmt.Sprintf("%s.methods[%d]", rtp, j)
			switch {
			case !isToken(m):
				v.add(mp, fmt.Sprintf("%q is not a method name", m))
			case m != strings.ToUpper(m):
				v.add(mp, fmt.Sprintf("%q: methods are case-sensitive (RFC 9110 §9.1); write %q", m, strings.ToUpper(m)))
			}
		}
		t.checkRequirementName(v, rtp+".requirement", rt.Requirement)
	}
	t.checkRequirementName(v, tp+".default_requirement", t.DefaultRequirement)
}

func (t *Tenant) checkRequirementName(v *validator, path, name string) {
	if _, ok := t.Requirements[name]; name != "" && !ok {
		v.add(path, fmt.Sprintf("no requirement %q in this tenant's requirements", name))
	}
}

func (m *ClaimMatcher) validate(v *validator, mp string) {
	if err := checkClaimPath(m.Claim); err != nil {
		v.add(mp+".claim", err.Error())
	}
	ops := 0
	if m.Equals != nil {
		ops++
	}
	for _, l := range []struct {
		name string
		vals []Value
		set  bool
	}{{"any_of", m.AnyOf, m.AnyOf != nil}, {"all_of", m.AllOf, m.AllOf != nil}} {
		if !l.set {
			continue
		}
		ops++
		if len(l.vals) == 0 {
			v.add(mp+"."+l.name, "must not be empty")
		}
		for k, val := range l.vals {
			if val.Kind == 0 { // YAML null: the decoder skips UnmarshalYAML
				v.add(fmt.Sprintf("%s.%s[%d]", mp, l.name, k), "must be a string, number or boolean, not null")
			}
		}
		if isScopeClaim(m.Claim) {
			for k, val := range l.vals {
				if val.Kind != KindString || !validScopeToken(val.Str) {
					v.add(fmt.Sprintf("%s.%s[%d]", mp, l.name, k), fmt.Sprintf("%s is not an OAuth scope token (RFC 6749 §3.3)", val))
				}
			}
		}
	}
	if m.Equals != nil && isScopeClaim(m.Claim) && (m.Equals.Kind != KindString || !validScopeToken(m.Equals.Str)) {
		v.add(mp+".equals", fmt.Sprintf("%s is not an OAuth scope token (RFC 6749 §3.3)", *m.Equals))
	}
	if ops != 1 {
		v.add(mp, "exactly one of equals, any_of and all_of is required")
	}
}

// checkClaimPath accepts a dotted claim path without empty segments.
func checkClaimPath(name string) error {
	if name == "" {
		return fmt.Errorf("claim name must not be empty")
	}
	if slices.Contains(strings.Split(name, "."), "") {
		return fmt.Errorf("claim path %q has an empty segment", name)
	}
	return nil
}

// compileRequirements builds tr's requirements, routes and default from t.
func compileRequirements(tr *Rules, t Tenant) {
	tr.Requirements = make(map[string]*RequirementRules, len(t.Requirements))
	for name, r := range t.Requirements {
		rr := &RequirementRules{Name: name, AllowMissing: r.AllowMissing}
		for _, id := range r.Providers {
			p := tr.byID[id]
			rr.Providers = append(rr.Providers, p)
			for _, src := range p.Sources {
				if !slices.Contains(rr.Sources, src) {
					rr.Sources = append(rr.Sources, src)
				}
			}
		}
		var scopes []string
		for _, m := range r.Claims {
			cr := ClaimRule{Path: ClaimPath(m.Claim)}
			switch {
			case m.Equals != nil:
				cr.Op, cr.Values = OpEquals, []Value{*m.Equals}
			case m.AnyOf != nil:
				cr.Op, cr.Values = OpAnyOf, m.AnyOf
			default:
				cr.Op, cr.Values = OpAllOf, m.AllOf
			}
			if isScopeClaim(m.Claim) {
				for _, val := range cr.Values {
					if !slices.Contains(scopes, val.Str) {
						scopes = append(scopes, val.Str)
					}
				}
			}
			rr.Claims = append(rr.Claims, cr)
		}
		rr.Scope = strings.Join(scopes, " ")
		tr.Requirements[name] = rr
	}
	for _, rt := range t.Routes {
		tr.Routes = append(tr.Routes, RouteRule{
			PathPrefix:  rt.PathPrefix,
			Methods:     rt.Methods,
			Requirement: tr.Requirements[rt.Requirement],
		})
	}
	tr.Default = tr.Requirements[t.DefaultRequirement]
	tr.Shadow = t.Mode == ModeShadow
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
