package tenants

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// MaxTemplateValueBytes bounds the value an issuer template's placeholder
// may stand for.
const MaxTemplateValueBytes = 128

// AnyTemplateValue, written as template_values: ["*"], accepts any value of
// the safe character set.
const AnyTemplateValue = "*"

var placeholderRe = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]{0,63})\}`)

// IssuerTemplate is a compiled issuer_template: an issuer with one
// placeholder, such as https://login.microsoftonline.com/{tid}/v2.0. The
// placeholder stands for 1 to MaxTemplateValueBytes characters of
// [A-Za-z0-9_-] only: no '/', '.', ':', '%' or '@', so a template can never
// match an issuer on another host, port or path. It is read-only.
type IssuerTemplate struct {
	Raw    string // as configured
	Claim  string // the placeholder's name, which is also the claim it must equal
	prefix string
	suffix string
	any    bool
	values map[string]bool
}

// ErrTemplateValues marks ParseIssuerTemplate's errors about the values
// rather than the template.
var ErrTemplateValues = errors.New("template_values")

// ParseIssuerTemplate compiles template with its allowed values (["*"]:
// any). It reports what is wrong with either.
func ParseIssuerTemplate(template string, values []string) (*IssuerTemplate, error) {
	locs := placeholderRe.FindAllStringSubmatchIndex(template, -1)
	if len(locs) != 1 {
		return nil, fmt.Errorf("%q must contain exactly one placeholder such as {tid}", template)
	}
	loc := locs[0]
	t := &IssuerTemplate{
		Raw:    template,
		Claim:  template[loc[2]:loc[3]],
		prefix: template[:loc[0]],
		suffix: template[loc[1]:],
	}
	if strings.ContainsAny(t.prefix+t.suffix, "{}") {
		return nil, fmt.Errorf("%q has a brace outside its one placeholder", template)
	}
	// The placeholder must sit in the path, so that scheme, host and port
	// are fixed; substituting a sample value shows the result is a URL.
	u, err := url.Parse(t.prefix + "x" + t.suffix)
	host, _, inPath := strings.Cut(strings.TrimPrefix(t.prefix, "https://"), "/")
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Host != host || !strings.HasPrefix(t.prefix, "https://") || !inPath {
		return nil, fmt.Errorf("%q must be an https URL with the placeholder in its path (the host is fixed)", template)
	}
	if len(values) == 0 {
		return nil, fmt.Errorf(`%w: required: list the accepted values, or write ["*"] to accept any`, ErrTemplateValues)
	}
	t.values = make(map[string]bool, len(values))
	for _, v := range values {
		switch {
		case v == AnyTemplateValue && len(values) == 1:
			t.any = true
		case v == AnyTemplateValue:
			return nil, fmt.Errorf(`%w: "*" must be the only value`, ErrTemplateValues)
		case !safeValue(v):
			return nil, fmt.Errorf("%w: %q must be 1-%d characters of A-Z, a-z, 0-9, '-' and '_'", ErrTemplateValues, v, MaxTemplateValueBytes)
		default:
			t.values[v] = true
		}
	}
	return t, nil
}

// safeValue reports whether v may stand for a placeholder.
func safeValue(v string) bool {
	if v == "" || len(v) > MaxTemplateValueBytes {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// Errors of IssuerTemplate.Match, for logs.
var (
	ErrTemplateShape = errors.New("iss does not have the issuer template's shape")
	ErrTemplateClaim = errors.New("the claim the issuer template names differs from the value in iss")
	ErrTemplateValue = errors.New("the value in iss is not one of the template_values")
)

// shape returns the value iss holds in the placeholder's place, when iss
// has the template's shape.
func (t *IssuerTemplate) shape(iss string) (string, bool) {
	if len(iss) < len(t.prefix)+len(t.suffix) || !strings.HasPrefix(iss, t.prefix) || !strings.HasSuffix(iss, t.suffix) {
		return "", false
	}
	v := iss[len(t.prefix) : len(iss)-len(t.suffix)]
	return v, safeValue(v)
}

// Match reports whether a token with issuer iss and claims is one of the
// template's: iss is the template with the placeholder replaced by a safe
// value that equals the claim of the placeholder's name (a string) and is
// one of the template_values. It returns that value.
func (t *IssuerTemplate) Match(iss string, claims map[string]any) (string, error) {
	v, ok := t.shape(iss)
	if !ok {
		return "", ErrTemplateShape
	}
	if c, ok := claims[t.Claim].(string); !ok || c != v {
		return "", ErrTemplateClaim
	}
	if !t.any && !t.values[v] {
		return "", ErrTemplateValue
	}
	return v, nil
}

// Matches reports whether the fixed issuer iss has the template's shape:
// some token's iss would then match both.
func (t *IssuerTemplate) Matches(iss string) bool {
	_, ok := t.shape(iss)
	return ok
}

// Overlaps reports whether some iss could have the shape of both t and o.
// It is conservative: when the fixed parts of one begin (and end) like the
// other's, they are taken to overlap.
func (t *IssuerTemplate) Overlaps(o *IssuerTemplate) bool {
	prefixes := strings.HasPrefix(t.prefix, o.prefix) || strings.HasPrefix(o.prefix, t.prefix)
	suffixes := strings.HasSuffix(t.suffix, o.suffix) || strings.HasSuffix(o.suffix, t.suffix)
	return prefixes && suffixes
}
