#!/usr/bin/env bash
# Mutation testing of the security-critical packages with gremlins
# (github.com/go-gremlins/gremlins): each mutant (a negated or shifted
# comparison, a changed operator) is compiled and the package's own tests are
# run against it; a mutant that every test survives is a guard no test
# checks. See docs/testing.md for how to read the result and how long it
# takes. Not part of CI: on a loaded 2-core machine a full run takes hours.
#
#   bash scripts/mutate.sh                          # every package below
#   bash scripts/mutate.sh ./internal/tenants       # one package
#   MUTATE_WORKERS=2 bash scripts/mutate.sh         # more parallel mutants
#   MUTATE_EXCLUDE='clocktest/' bash scripts/mutate.sh ./jwkscache  # skip files (regexp)
#   MUTATE_SKIP='^TestScale_' bash scripts/mutate.sh ./jwkscache      # skip slow tests
set -euo pipefail

cd "$(dirname "$0")/.."

GREMLINS="github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0"
WORKERS="${MUTATE_WORKERS:-1}"        # mutants tested at once
TEST_CPU="${MUTATE_TEST_CPU:-1}"      # GOMAXPROCS of each test run
TIMEOUT_COEFF="${MUTATE_TIMEOUT:-10}" # × the unmutated run's time; a mutant past it is TIMED OUT
OUT="${MUTATE_OUT:-mutate-out}"       # per-package JSON and logs (not committed)

pkgs=("$@")
if [ "${#pkgs[@]}" -eq 0 ]; then
	pkgs=(./jwkscache ./internal/authz ./internal/tenants ./internal/forwardauth ./internal/redisstore ./internal/dpop)
fi

# Tests that need a real redis-server find it here (see scripts/test.sh).
if command -v redis-server >/dev/null 2>&1; then
	EXTAUTHZ_REDIS_SERVER="$(command -v redis-server)"
	export EXTAUTHZ_REDIS_SERVER
fi

# The test CPU count goes through GOFLAGS: gremlins v0.6.0's --test-cpu passes
# "-cpu N" to go test as one argument, which go test takes for a package and
# fails in setup, so every mutant would count as KILLED. -count=1: the
# timeout is a multiple of gremlins' own first test run, which go test's
# cache would otherwise answer in milliseconds, and every mutant would then
# count as TIMED OUT.
# MUTATE_SKIP (a go test -skip pattern) leaves out slow tests; a mutant only
# they would kill then counts as LIVED, so the score can only come out lower.
GOFLAGS="${GOFLAGS:+$GOFLAGS }-cpu=$TEST_CPU -count=1${MUTATE_SKIP:+ -skip=$MUTATE_SKIP}"
export GOFLAGS

exclude=()
if [ -n "${MUTATE_EXCLUDE:-}" ]; then
	exclude=(--exclude-files "$MUTATE_EXCLUDE")
fi

mkdir -p "$OUT"
for pkg in "${pkgs[@]}"; do
	name="$(basename "$pkg")"
	printf '\n==> %s\n' "$pkg"
	start=$(date +%s)
	# gremlins mutates a copy of the module, never the work tree.
	go run "$GREMLINS" unleash --workers "$WORKERS" "${exclude[@]}" \
		--timeout-coefficient "$TIMEOUT_COEFF" -o "$OUT/$name.json" "$pkg" | tee "$OUT/$name.log" |
		grep -E 'LIVED|Killed:|Timed out:|efficacy|coverage' || true
	echo "$pkg: $(($(date +%s) - start))s"
done
