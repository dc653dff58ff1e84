package urlpath

import (
	"errors"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  error
	}{
		{"/", "/", nil},
		{"/orders/7", "/orders/7", nil},
		{"/orders/7?access_token=x#frag", "/orders/7", nil},
		{"/orders?q=/../admin", "/orders", nil},
		{"/a/b/", "/a/b/", nil},
		{"/admin//users", "/admin/users", nil},
		{"//admin", "/admin", nil},
		{"/public/../admin/x", "/admin/x", nil},
		{"/public/./x", "/public/x", nil},
		{"/public/%2e%2e/admin", "/admin", nil},
		{"/public/%2E%2E/admin", "/admin", nil},
		{"/public/.%2e/admin", "/admin", nil},
		{"/public/%2e/x", "/public/x", nil},
		{"/public/..", "/", nil},
		{"/public/x/..", "/public/", nil},
		{"/public/x/.", "/public/x/", nil},
		{"/../../admin", "/admin", nil},
		{"/..", "/", nil},
		{"/a..b/.c/..d", "/a..b/.c/..d", nil},
		{"/%61dmin", "/admin", nil},
		{"/caf%c3%a9", "/caf%C3%A9", nil},
		{"/x%20y", "/x%20y", nil},
		{"/~user/a-b_c.d", "/~user/a-b_c.d", nil},
		{"/a:b@c!$&'()*+,;=", "/a:b@c!$&'()*+,;=", nil},
		// Hostile encodings: their own error, never a guess.
		{"/public%2f..%2fadmin", "", ErrEncodedSeparator},
		{"/public%2F..%2Fadmin", "", ErrEncodedSeparator},
		{"/admin%5cx", "", ErrEncodedSeparator},
		{"/admin%5Cx", "", ErrEncodedSeparator},
		{"/admin%00.json", "", ErrEncodedSeparator},
		{"/public\\..\\admin", "", ErrEncodedSeparator},
		// Not origin-form.
		{"", "", ErrNotOriginForm},
		{"*", "", ErrNotOriginForm},
		{"admin", "", ErrNotOriginForm},
		{"http://host/admin", "", ErrNotOriginForm},
		{"?x=1", "", ErrNotOriginForm},
		{"/a%", "", ErrNotOriginForm},
		{"/a%2", "", ErrNotOriginForm},
		{"/a%zz", "", ErrNotOriginForm},
		{"/a b", "", ErrNotOriginForm},
		{"/a\x00b", "", ErrNotOriginForm},
		{"/a\tb", "", ErrNotOriginForm},
		{"/caf\xc3\xa9", "", ErrNotOriginForm},
		{"/a\"b", "", ErrNotOriginForm},
		{"/a<b>", "", ErrNotOriginForm},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// TestNormalize_Idempotent: a normal path is its own normal form, so a
// route's path_prefix written in normal form can be matched as a string.
func TestNormalize_Idempotent(t *testing.T) {
	for _, in := range []string{"/a//b/../c/%2e/%7euser/", "/x/%c3%a9/..", "/.././a"} {
		once, err := Normalize(in)
		if err != nil {
			t.Fatalf("Normalize(%q): %v", in, err)
		}
		twice, err := Normalize(once)
		if err != nil || twice != once {
			t.Errorf("Normalize(%q) = %q, then %q, %v", in, once, twice, err)
		}
	}
}

func TestNormalize_CleanPathDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Normalize("/orders/7/items?x=1"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations for a clean path, want 0", allocs)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2E/x", "//a//b/", "/a%2fb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Normalize(in)
		if err != nil {
			return
		}
		again, err := Normalize(out)
		if err != nil || again != out {
			t.Fatalf("Normalize(%q) = %q, not a fixed point: %q, %v", in, out, again, err)
		}
	})
}
