package admin

import (
	"github.com/extauthz/extauthz/jwkscache"
)

// available reports whether lookups for st can be answered: a key set is
// held and is fresh, or stale but still inside stale_while_error.
func available(st jwkscache.Status) bool {
	return st.Available()
}
