// Package urlpath provides the normal form of a request path that route
// rules are matched against: the path the upstream will see after a gateway
// that normalises (Envoy's normalize_path and merge_slashes) has done so.
//
// Normalize follows RFC 3986 §6.2.2: percent-encodings of unreserved
// characters are decoded (§6.2.2.2, so "%2e%2e" is a dot segment), the hex
// digits of the others are upper-cased (§6.2.2.1), and dot segments are
// removed (§5.2.4); runs of "/" are merged into one. Paths whose meaning
// depends on the server are refused rather than guessed at: an encoded "/",
// "\" or NUL ("%2F", "%5C", "%00"; one server splits segments on "%2F",
// another does not), a raw "\", and anything that is not an origin-form
// path (RFC 9112 §3.2.1: it must start with "/" and hold only pchar,
// RFC 3986 §3.3).
package urlpath

import (
	"errors"
	"strings"
)

// ErrEncodedSeparator is returned for a path carrying "%2F", "%5C" or "%00"
// (in either case), or a raw "\".
var ErrEncodedSeparator = errors.New("urlpath: encoded '/', '\\' or NUL in the path")

// ErrNotOriginForm is returned for a path that is not an RFC 9112 §3.2.1
// origin-form path: empty, not starting with "/", or holding a character
// outside RFC 3986's pchar, or a malformed percent-encoding.
var ErrNotOriginForm = errors.New("urlpath: not an origin-form path")

// Normalize returns the normal form of target's path (see the package doc).
// The query and fragment are dropped. When the path is already normal,
// the result is a substring of target and nothing is allocated.
func Normalize(target string) (string, error) {
	p := target
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if p == "" || p[0] != '/' {
		return "", ErrNotOriginForm
	}
	clean := true
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", ErrNotOriginForm
			}
			switch b := unhex(p[i+1])<<4 | unhex(p[i+2]); {
			case b == '/' || b == '\\' || b == 0:
				return "", ErrEncodedSeparator
			}
			clean = false // decode or upper-case it below
			i += 2
		case c == '\\':
			return "", ErrEncodedSeparator
		case c == '/':
			if i+1 < len(p) && p[i+1] == '/' {
				clean = false
			}
		case c == '.':
			// A dot segment: "/." or "/.." followed by "/" or the end.
			if p[i-1] == '/' && (i+1 == len(p) || p[i+1] == '/' ||
				(p[i+1] == '.' && (i+2 == len(p) || p[i+2] == '/'))) {
				clean = false
			}
		case !isPchar(c):
			return "", ErrNotOriginForm
		}
	}
	if clean {
		return p, nil
	}
	return removeDotSegments(decodeUnreserved(p)), nil
}

// decodeUnreserved decodes %XX when XX is an unreserved character and
// upper-cases the hex digits of the others (RFC 3986 §6.2.2.1, §6.2.2.2).
// p has only well-formed encodings (checked by Normalize).
func decodeUnreserved(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		d := unhex(p[i+1])<<4 | unhex(p[i+2])
		if isUnreserved(d) {
			b.WriteByte(d)
		} else {
			b.WriteByte('%')
			b.WriteByte(upper(p[i+1]))
			b.WriteByte(upper(p[i+2]))
		}
		i += 2
	}
	return b.String()
}

// removeDotSegments resolves "." and ".." (RFC 3986 §5.2.4) and merges
// empty segments. A ".." above the root stays at the root. A trailing
// "/", or a final dot segment, leaves the path ending in "/".
func removeDotSegments(p string) string {
	segs := make([]string, 0, strings.Count(p, "/"))
	trailing := false
	for rest := p[1:]; ; {
		seg, next, more := strings.Cut(rest, "/")
		trailing = false
		switch seg {
		case "", ".":
			trailing = true
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
			trailing = true
		default:
			segs = append(segs, seg)
		}
		if !more {
			break
		}
		rest = next
	}
	out := "/" + strings.Join(segs, "/")
	if trailing && len(segs) > 0 {
		out += "/"
	}
	return out
}

// isPchar reports whether c may appear unencoded in a path (RFC 3986 §3.3:
// unreserved, sub-delims, ":", "@", plus the "/" separator); "%" is handled
// by the caller.
func isPchar(c byte) bool {
	if isUnreserved(c) {
		return true
	}
	return strings.IndexByte("!$&'()*+,;=:@/", c) >= 0
}

// isUnreserved reports RFC 3986 §2.3's unreserved characters.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}
