package grpcauthz

import (
	"encoding/json"
	"maps"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/extauthz/extauthz/internal/authz"
)

// The dynamic metadata is a structpb tree: a Value and a kind wrapper for
// every claim, a Struct and a map for every object. It is built from the
// claims by a type switch (no reflection), with the Values, wrappers,
// Structs and lists of one tree taken from one slab per type, sized by a
// first walk: about a dozen allocations for a tree, instead of two or
// three per claim. A token answered from the verified-token cache reuses
// the tree of its first allow (memo).

// memo is what the gRPC front end keeps with a token in the verified-token
// cache (authz.Decision.ClaimsMemo): parts of the response that depend on
// the token alone, made for its first allow and shared, read-only, by
// every later one.
type memo struct {
	claims *structpb.Struct // the claims member; nil when metadata_claims is []
	// base is the whole metadata of an allow that has nothing
	// request-dependent in it (no requirement, would_deny or anonymous),
	// for tenant, provider and issuer values.
	base             *structpb.Struct
	tenant, provider string
	issuer           map[string]string
	// options are the header options of headers, the decision's Headers
	// slice that authz shares between allows of the token.
	headers []authz.Header
	options []*corev3.HeaderValueOption
}

func newMemo(d *authz.Decision) *memo {
	m := &memo{tenant: d.TenantID, provider: d.ProviderID, issuer: d.IssuerValues, headers: d.Headers}
	if hasClaims(d) {
		m.claims = claimsStruct(d)
	}
	base := authz.Decision{TenantID: d.TenantID, ProviderID: d.ProviderID, IssuerValues: d.IssuerValues}
	m.base = buildMetadata(&base, m.claims, true)
	if len(d.Headers) > 0 {
		m.options = headerOptions(d.Headers)
	}
	return m
}

// metadata returns d's dynamic metadata, from m when m has it (m may be
// nil).
func (m *memo) metadata(d *authz.Decision) *structpb.Struct {
	switch {
	case m == nil:
		return buildMetadata(d, nil, false)
	case d.Requirement == "" && d.WouldDeny == "" && !d.Anonymous && d.TenantID == m.tenant &&
		d.ProviderID == m.provider && maps.Equal(d.IssuerValues, m.issuer):
		return m.base
	default:
		return buildMetadata(d, m.claims, true)
	}
}

// sameSlice reports whether a and b are the same non-empty slice.
func sameSlice(a, b []authz.Header) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

// hasClaims reports whether d's metadata has a claims member: an allow with
// a token, unless metadata_claims is [].
func hasClaims(d *authz.Decision) bool {
	return d.Claims != nil && (d.MetadataClaims.All() || len(d.MetadataClaims.Names()) > 0)
}

// eachClaim calls f with every claim of d that metadata_claims selects.
func eachClaim(d *authz.Decision, f func(name string, v any)) {
	if d.MetadataClaims.All() {
		for k, v := range d.Claims {
			f(k, v)
		}
		return
	}
	for _, k := range d.MetadataClaims.Names() {
		if v, ok := d.Claims[k]; ok {
			f(k, v)
		}
	}
}

// buildMetadata builds {tenant, provider, claims, issuer_values,
// requirement, anonymous, would_deny}. With claimsDone the claims member
// is claims (nil: none), else it is built from d.
func buildMetadata(d *authz.Decision, claims *structpb.Struct, claimsDone bool) *structpb.Struct {
	var n sizes
	n.structs++ // the metadata itself
	n.vals += 2 // tenant, provider
	n.strs += 2
	withClaims := claims != nil
	if !claimsDone && hasClaims(d) {
		withClaims = true
		n.structs++
		eachClaim(d, func(_ string, v any) { n.count(v) })
	}
	if withClaims {
		n.vals++
		n.structW++
	}
	if len(d.IssuerValues) > 0 {
		n.vals += 1 + len(d.IssuerValues)
		n.structs++
		n.structW++
		n.strs += len(d.IssuerValues)
	}
	for _, s := range []string{d.Requirement, string(d.WouldDeny)} {
		if s != "" {
			n.vals++
			n.strs++
		}
	}
	if d.Anonymous {
		n.vals++
		n.bools++
	}
	t := newTree(&n)
	md := t.newStruct(7)
	md.Fields["tenant"] = t.str(d.TenantID)
	md.Fields["provider"] = t.str(d.ProviderID)
	if !claimsDone && withClaims {
		claims = t.newStruct(len(d.Claims))
		eachClaim(d, func(k string, v any) { claims.Fields[k] = t.value(v) })
	}
	if claims != nil {
		md.Fields["claims"] = t.structValue(claims)
	}
	if len(d.IssuerValues) > 0 {
		iv := t.newStruct(len(d.IssuerValues))
		for k, v := range d.IssuerValues {
			iv.Fields[k] = t.str(v)
		}
		md.Fields["issuer_values"] = t.structValue(iv)
	}
	if d.Requirement != "" {
		md.Fields["requirement"] = t.str(d.Requirement)
	}
	if d.Anonymous {
		v := take(&t.vals)
		b := take(&t.bools)
		b.BoolValue = true
		v.Kind = b
		md.Fields["anonymous"] = v
	}
	if d.WouldDeny != "" {
		md.Fields["would_deny"] = t.str(string(d.WouldDeny))
	}
	return md
}

// claimsStruct builds the claims member alone.
func claimsStruct(d *authz.Decision) *structpb.Struct {
	n := sizes{structs: 1}
	eachClaim(d, func(_ string, v any) { n.count(v) })
	t := newTree(&n)
	s := t.newStruct(len(d.Claims))
	eachClaim(d, func(k string, v any) { s.Fields[k] = t.value(v) })
	return s
}

// sizes counts what a tree needs of each type.
type sizes struct {
	vals, strs, nums, bools, nulls, structs, structW, lists, elems int
}

// count adds what value(v) takes. A json.Number counts as a number and as
// a string: which one it becomes is only known when it is converted.
func (n *sizes) count(v any) {
	n.vals++
	switch x := v.(type) {
	case nil:
		n.nulls++
	case bool:
		n.bools++
	case float64:
		n.nums++
	case json.Number:
		n.nums++
		n.strs++
	case []any:
		n.lists++
		n.elems += len(x)
		for _, e := range x {
			n.count(e)
		}
	case map[string]any:
		n.structs++
		n.structW++
		for _, e := range x {
			n.count(e)
		}
	default: // a string, or another type written as JSON
		n.strs++
	}
}

// tree holds the slabs one metadata tree is built from.
type tree struct {
	vals    []structpb.Value
	strs    []structpb.Value_StringValue
	nums    []structpb.Value_NumberValue
	bools   []structpb.Value_BoolValue
	nulls   []structpb.Value_NullValue
	structs []structpb.Struct
	structW []structpb.Value_StructValue
	lists   []structpb.ListValue
	listW   []structpb.Value_ListValue
	elems   []*structpb.Value
}

func newTree(n *sizes) tree {
	return tree{
		vals:    slab[structpb.Value](n.vals),
		strs:    slab[structpb.Value_StringValue](n.strs),
		nums:    slab[structpb.Value_NumberValue](n.nums),
		bools:   slab[structpb.Value_BoolValue](n.bools),
		nulls:   slab[structpb.Value_NullValue](n.nulls),
		structs: slab[structpb.Struct](n.structs),
		structW: slab[structpb.Value_StructValue](n.structW),
		lists:   slab[structpb.ListValue](n.lists),
		listW:   slab[structpb.Value_ListValue](n.lists),
		elems:   slab[*structpb.Value](n.elems),
	}
}

// slab allocates n values, or nothing for none.
func slab[T any](n int) []T {
	if n == 0 {
		return nil
	}
	return make([]T, n)
}

// take returns the next value of a slab.
func take[T any](s *[]T) *T {
	p := &(*s)[0]
	*s = (*s)[1:]
	return p
}

func (t *tree) newStruct(size int) *structpb.Struct {
	s := take(&t.structs)
	s.Fields = make(map[string]*structpb.Value, size)
	return s
}

func (t *tree) str(s string) *structpb.Value {
	v, w := take(&t.vals), take(&t.strs)
	w.StringValue = s
	v.Kind = w
	return v
}

func (t *tree) structValue(s *structpb.Struct) *structpb.Value {
	v, w := take(&t.vals), take(&t.structW)
	w.StructValue = s
	v.Kind = w
	return v
}

// value converts a claim decoded by encoding/json with UseNumber: strings,
// booleans, null, json.Number, []any and map[string]any.
func (t *tree) value(v any) *structpb.Value {
	switch x := v.(type) {
	case nil:
		out := take(&t.vals)
		out.Kind = take(&t.nulls) // its zero value is NULL_VALUE
		return out
	case string:
		return t.str(x)
	case bool:
		out, w := take(&t.vals), take(&t.bools)
		w.BoolValue = x
		out.Kind = w
		return out
	case json.Number:
		if f, ok := exactFloat(string(x)); ok {
			return t.number(f)
		}
		return t.str(string(x))
	case float64:
		return t.number(x)
	case []any:
		out, l, w := take(&t.vals), take(&t.lists), take(&t.listW)
		l.Values, t.elems = t.elems[:len(x):len(x)], t.elems[len(x):]
		for i, e := range x {
			l.Values[i] = t.value(e)
		}
		w.ListValue = l
		out.Kind = w
		return out
	case map[string]any:
		s := t.newStruct(len(x))
		for k, e := range x {
			s.Fields[k] = t.value(e)
		}
		return t.structValue(s)
	default:
		// Not produced by encoding/json; kept visible rather than dropped.
		b, _ := json.Marshal(x)
		return t.str(string(b))
	}
}

func (t *tree) number(f float64) *structpb.Value {
	out, w := take(&t.vals), take(&t.nums)
	w.NumberValue = f
	out.Kind = w
	return out
}
