package grpcauthz

import (
	"strconv"
	"strings"
)

// exactFloat returns the JSON number literal n (RFC 8259 §6) as a float64
// when float64 carries it digit for digit: the shortest decimal that
// rounds to the float64 has the same value as n. Otherwise ok is false and
// the caller keeps the literal (RFC 8259 §6 warns that numbers beyond
// IEEE 754 double precision lose their value in most implementations).
func exactFloat(n string) (f float64, ok bool) {
	f, err := strconv.ParseFloat(n, 64)
	if err != nil {
		return 0, false
	}
	if smallInteger(n) {
		return f, true // the common case (exp, iat): no allocation
	}
	want, ok := decimal(n)
	if !ok {
		return 0, false
	}
	got, _ := decimal(strconv.FormatFloat(f, 'e', -1, 64))
	return f, want == got
}

// decimal returns a canonical form of a decimal number literal
// ("-1.50e3", "1500"): sign, significant digits without leading or
// trailing zeros, and the exponent of the last digit, so that two
// literals of the same value have the same form. ok is false for what is
// not a number literal or has an exponent beyond int range.
func decimal(s string) (string, bool) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil {
			return "", false
		}
		mant, exp = s[:i], e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return "", false
	}
	exp -= len(frac)
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return "0", true // +0 and -0 are the same value to an upstream
	}
	for strings.HasSuffix(digits, "0") {
		digits = digits[:len(digits)-1]
		exp++
	}
	sign := ""
	if neg {
		sign = "-"
	}
	return sign + digits + "e" + strconv.Itoa(exp), true
}

// smallInteger reports whether n is an integer literal of at most 15
// digits: every such integer is below 2^53, so float64 holds it exactly
// and writes it back digit for digit.
func smallInteger(n string) bool {
	digits := strings.TrimPrefix(n, "-")
	if digits == "" || len(digits) > 15 || (digits[0] == '0' && len(digits) > 1) {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}
