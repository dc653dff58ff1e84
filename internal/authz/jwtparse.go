package authz

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// The token is decoded here rather than by golang-jwt's Parser: its
// generic path (a map for the header, a json.Decoder for the claims, a
// string and an interface per key and value) was about half the
// allocations of a whole Check. What golang-jwt still does is the part
// that is cryptography: the signing methods (GetSigningMethod and
// SigningMethod.Verify). The decoding keeps golang-jwt's observable
// behaviour, which FuzzParse_MatchesGolangJWT checks against the Parser
// itself: the same tokens are refused for the same reason codes, and the
// same claims come out (json.Number for numbers, the last of duplicate
// names, encoding/json's strings).

// b64 is one encoding per token: no non-zero trailing bits.
var b64 = base64.RawURLEncoding.Strict()

// parse checks raw's shape and decodes its header and claims (package doc,
// steps 3 and 4), in golang-jwt's order, so a token refused for more than
// one reason is refused for the one golang-jwt's ParseUnverified gave
// first (an unknown alg is algorithm_not_allowed only when the header and
// claims decode).
func (s *Server) parse(raw string) (token, error) {
	if !wellFormed(raw) {
		return token{}, refusedShape
	}
	first := strings.IndexByte(raw, '.')
	last := strings.LastIndexByte(raw, '.')
	var hbuf [256]byte // the header, on the stack when it fits
	hdrJSON, err := decodeSegment(hbuf[:0], raw[:first])
	if err != nil {
		return token{}, refuse(ReasonTokenMalformed, errHeaderB64)
	}
	var h joseHeader
	if !h.decode(hdrJSON) {
		return token{}, refuse(ReasonTokenMalformed, errHeaderJSON)
	}
	payload, err := decodeSegment(nil, raw[first+1:last])
	if err != nil {
		return token{}, refuse(ReasonTokenMalformed, errClaimsB64)
	}
	// A payload that is not exactly one JSON value is refused below, but
	// only after the alg: golang-jwt's json.Decoder read the first value
	// and ignored the rest (see claimsAreOneValue).
	oneValue := json.Valid(payload)
	if !oneValue && !firstValueValid(payload) {
		return token{}, refuse(ReasonTokenMalformed, errClaimsJSON)
	}
	switch firstByte(payload) {
	case '{', 'n': // an object, or null: no claims
	default:
		return token{}, refuse(ReasonTokenMalformed, errClaimsShape)
	}
	if !h.algString {
		return token{}, refuse(ReasonTokenMalformed, errAlgMissing)
	}
	tok := token{raw: raw, method: signingMethod(h.alg)}
	if tok.method == nil {
		// A syntactically fine alg golang-jwt does not know.
		return token{}, refuse(ReasonAlgorithmNotAllowed, errAlgUnknown)
	}
	if tok.sig, err = decodeSegment(nil, raw[last+1:]); err != nil {
		return token{}, refuse(ReasonTokenMalformed, errSigB64)
	}
	if h.crit {
		return token{}, refuse(ReasonTokenMalformed, errCrit)
	}
	if !oneValue {
		return token{}, refuse(ReasonTokenMalformed, errTrailingClaims)
	}
	if h.kidBad {
		return token{}, refuse(ReasonTokenMalformed, errKidType)
	}
	if h.typBad {
		return token{}, refuse(ReasonTokenMalformed, errTypType)
	}
	tok.kid, tok.typ = h.kid, h.typ
	r := jsonReader{s: string(payload)}
	r.space()
	if r.s[r.i] == '{' {
		tok.claims = r.object()
	} else {
		tok.claims = jwt.MapClaims{} // null: no claims
	}
	if err := checkClaimTypes(tok.claims); err != nil {
		return token{}, refuse(ReasonTokenMalformed, err)
	}
	tok.iss, _ = tok.claims["iss"].(string)
	return tok, nil
}

// decodeSegment decodes a base64url segment (wellFormed already checked
// its alphabet and length) into dst's storage when it fits.
func decodeSegment(dst []byte, seg string) ([]byte, error) {
	n := b64.DecodedLen(len(seg))
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	n, err := b64.Decode(dst, []byte(seg))
	return dst[:n], err
}

// firstValueValid reports whether data begins with one valid JSON value,
// whatever follows: what golang-jwt's json.Decoder accepted. Only a
// payload json.Valid refuses gets here.
func firstValueValid(data []byte) bool {
	var v json.RawMessage
	return json.NewDecoder(bytes.NewReader(data)).Decode(&v) == nil
}

// firstByte returns the first byte of data that is not JSON whitespace.
func firstByte(data []byte) byte {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\n', '\r':
		default:
			return c
		}
	}
	return 0
}

// signingMethod is jwt.GetSigningMethod for the algorithms that have one.
func signingMethod(alg string) jwt.SigningMethod {
	if alg == "" {
		return nil
	}
	return jwt.GetSigningMethod(alg)
}

// joseHeader is what a token's JOSE header says about the parameters
// extauthz reads. Names are matched exactly (RFC 7515 §4: they are
// case-sensitive), where encoding/json's struct decoding would also take
// "ALG" for alg; the last of duplicate names wins, as in golang-jwt's map.
type joseHeader struct {
	alg, kid, typ  string
	algString      bool // alg is present and a string
	kidBad, typBad bool // present but not a string
	crit           bool // present at all, whatever its value
}

// decode reads data, which must be one JSON object, and reports whether it
// was one.
func (h *joseHeader) decode(data []byte) bool {
	if !json.Valid(data) || firstByte(data) != '{' {
		return false
	}
	r := jsonReader{s: string(data)}
	r.space()
	r.members(func(name string) {
		isString := r.s[r.i] == '"'
		switch name {
		case "alg":
			h.alg, h.algString = r.stringOrSkip(isString), isString
		case "kid":
			h.kid, h.kidBad = r.stringOrSkip(isString), !isString
		case "typ":
			h.typ, h.typBad = r.stringOrSkip(isString), !isString
		case "crit":
			h.crit = true
			r.skip()
		default:
			r.skip()
		}
	})
	return true
}

// jsonReader decodes JSON text that json.Valid has accepted, the way
// encoding/json decodes it into an interface with UseNumber: objects as
// map[string]any, arrays as []any, numbers as json.Number holding the
// literal, strings as encoding/json unquotes them. Strings without escapes
// are slices of s, so a claims set costs one string and one allocation per
// value, not one per name and two per value. It never checks syntax:
// json.Valid did, and on anything else it may panic.
type jsonReader struct {
	s string
	i int
}

// space skips JSON whitespace.
func (r *jsonReader) space() {
	for r.i < len(r.s) {
		switch r.s[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// value decodes the value at r.i (no whitespace before it).
func (r *jsonReader) value() any {
	switch r.s[r.i] {
	case '{':
		return r.object()
	case '[':
		return r.array()
	case '"':
		return r.str()
	case 't':
		r.i += len("true")
		return true
	case 'f':
		r.i += len("false")
		return false
	case 'n':
		r.i += len("null")
		return nil
	default:
		return r.number()
	}
}

// members calls member with each name of the object at r.i, with r.i at
// the member's value; member must consume the value.
func (r *jsonReader) members(member func(name string)) {
	r.i++ // {
	r.space()
	if r.s[r.i] == '}' {
		r.i++
		return
	}
	for {
		r.space()
		name := r.str()
		r.space()
		r.i++ // :
		r.space()
		member(name)
		r.space()
		c := r.s[r.i]
		r.i++ // , or }
		if c == '}' {
			return
		}
	}
}

// object decodes the object at r.i; the last of duplicate names wins, as
// in encoding/json.
func (r *jsonReader) object() map[string]any {
	m := map[string]any{}
	r.members(func(name string) { m[name] = r.value() })
	return m
}

// array decodes the array at r.i; an empty one is an empty, non-nil slice,
// as in encoding/json.
func (r *jsonReader) array() []any {
	a := []any{}
	r.i++ // [
	r.space()
	if r.s[r.i] == ']' {
		r.i++
		return a
	}
	for {
		r.space()
		a = append(a, r.value())
		r.space()
		c := r.s[r.i]
		r.i++ // , or ]
		if c == ']' {
			return a
		}
	}
}

// number returns the number literal at r.i.
func (r *jsonReader) number() json.Number {
	start := r.i
	for r.i < len(r.s) && strings.IndexByte("+-0123456789.eE", r.s[r.i]) >= 0 {
		r.i++
	}
	return json.Number(r.s[start:r.i])
}

// str decodes the string at r.i. One without escapes or invalid UTF-8 is
// the text between the quotes; any other goes through encoding/json, which
// resolves escapes and surrogate pairs and replaces what is not UTF-8 with
// U+FFFD.
func (r *jsonReader) str() string {
	start := r.i
	r.i++ // "
	plain := true
	for {
		c := r.s[r.i]
		if c == '"' {
			break
		}
		if c == '\\' {
			plain = false
			r.i++ // the escaped byte; a \u's hex digits are plain bytes
		} else if c >= utf8.RuneSelf {
			plain = false
		}
		r.i++
	}
	r.i++ // "
	lit := r.s[start:r.i]
	if inner := lit[1 : len(lit)-1]; plain || (!strings.Contains(inner, `\`) && utf8.ValidString(inner)) {
		return inner
	}
	var s string
	_ = json.Unmarshal([]byte(lit), &s) // a valid JSON string: cannot fail
	return s
}

// stringOrSkip returns the string at r.i when isString, else skips the
// value and returns "".
func (r *jsonReader) stringOrSkip(isString bool) string {
	if isString {
		return r.str()
	}
	r.skip()
	return ""
}

// skip passes over the value at r.i without decoding it.
func (r *jsonReader) skip() {
	depth := 0
	for {
		switch r.s[r.i] {
		case '"':
			r.skipString()
			if depth == 0 {
				return
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				r.i++
				return
			}
		case ',', ':', ' ', '\t', '\n', '\r':
		default: // a number or literal
			if depth == 0 {
				for r.i < len(r.s) && strings.IndexByte(",}] \t\n\r", r.s[r.i]) < 0 {
					r.i++
				}
				return
			}
		}
		r.i++
	}
}

// skipString passes over the string at r.i.
func (r *jsonReader) skipString() {
	r.i++ // "
	for r.s[r.i] != '"' {
		if r.s[r.i] == '\\' {
			r.i++
		}
		r.i++
	}
	r.i++
}
