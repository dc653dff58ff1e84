package jwkscache

import (
	"cmp"
	"slices"
	"sync"
)

// Availability counts the registered providers and those that can answer
// lookups (a fresh set, or a stale one inside stale_while_error).
type Availability struct {
	Providers int
	Usable    int
}

// availability keeps Availability up to date as providers change state, so
// readiness costs the same with 10 providers as with 10,000: a refresh
// updates one provider's entry instead of every status being recomputed
// and sorted after it.
type availability struct {
	mu sync.Mutex
	// members holds every registered provider: true when it is usable.
	members map[*provider]bool
	// unusable holds the registered providers that are not, for listing.
	unusable map[*provider]struct{}
}

func newAvailability() *availability {
	return &availability{members: map[*provider]bool{}, unusable: map[*provider]struct{}{}}
}

// add counts p as registered, with its current state.
func (a *availability) add(p *provider) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.setLocked(p, p.usable())
}

// remove stops counting p; later notes about it are ignored.
func (a *availability) remove(p *provider) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.members, p)
	delete(a.unusable, p)
}

// note re-reads p's state after it may have changed (a set adopted, a set
// aged into uselessness). The state is read under the lock, so whatever
// order concurrent notes run in, the last one sees the latest state.
func (a *availability) note(p *provider) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.members[p]; ok {
		a.setLocked(p, p.usable())
	}
}

func (a *availability) setLocked(p *provider, usable bool) {
	a.members[p] = usable
	if usable {
		delete(a.unusable, p)
	} else {
		a.unusable[p] = struct{}{}
	}
}

func (a *availability) counts() Availability {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Availability{Providers: len(a.members), Usable: len(a.members) - len(a.unusable)}
}

func (a *availability) unusableProviders() []*provider {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*provider, 0, len(a.unusable))
	for p := range a.unusable {
		out = append(out, p)
	}
	return out
}

// usable reports whether p holds a set that can answer lookups.
func (p *provider) usable() bool {
	s := p.snap.Load()
	return s != nil && s.phase.Load() != phaseUnusable
}

// Availability reports how many providers are registered and how many can
// answer lookups. It costs the same whatever the number of providers.
func (r *Registry) Availability() Availability { return r.impl.deps.avail.counts() }

// UnusableStatuses reports the providers that cannot answer lookups (no
// set yet, or past stale_while_error), sorted by tenant then provider. It
// costs in proportion to their number, not to all providers'.
func (r *Registry) UnusableStatuses() []Status {
	ps := r.impl.deps.avail.unusableProviders()
	out := make([]Status, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.status())
	}
	sortStatuses(out)
	return out
}

func sortStatuses(sts []Status) {
	slices.SortFunc(sts, func(a, b Status) int {
		return cmp.Or(cmp.Compare(a.TenantID, b.TenantID), cmp.Compare(a.ProviderID, b.ProviderID))
	})
}
