package admin

import (
	"time"

	"github.com/extauthz/extauthz/jwkscache"
)

// available reports whether lookups for st can be answered at now: a key set
// is held and is fresh, or stale but inside stale_while_error.
//
// TODO(issue 5): jwkscache.Status does not carry the end of the
// stale-while-error window yet; until it does, a stale set counts as usable.
func available(st jwkscache.Status, now time.Time) bool {
	_ = now
	return hasSet(st)
}
