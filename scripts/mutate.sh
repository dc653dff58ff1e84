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

mkdir -p "$OUT"
for pkg in "${pkgs[@]}"; do
	name="$(basename "$pkg")"
	printf '\n==> %s\n' "$pkg"
	start=$(date +%s)
	# gremlins mutates a copy of the module, never the work tree.
	go run "$GREMLINS" unleash --workers "$WORKERS" --test-cpu "$TEST_CPU" \
		--timeout-coefficient "$TIMEOUT_COEFF" -o "$OUT/$name.json" "$pkg" | tee "$OUT/$name.log" |
		grep -E 'LIVED|Killed:|Timed out:|efficacy|coverage' || true
	echo "$pkg: $(($(date +%s) - start))s"
done
