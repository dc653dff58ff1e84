#!/usr/bin/env bash
# Builds the release: one static (CGO_ENABLED=0) extauthz binary per
# linux architecture, version stamped, plus SHA256SUMS, into DIST (which it
# empties first). Run through `make release`; the ldflags are those of the
# Makefile's build-static and of the Dockerfile (deploy/deploy_test.go checks).
#
#   bash scripts/release.sh DIST VERSION REVISION ARCH...
#   cd DIST && sha256sum -c SHA256SUMS     # what a user runs to verify
set -euo pipefail

if [ "$#" -lt 4 ]; then
	echo "usage: $0 DIST VERSION REVISION ARCH..." >&2
	exit 2
fi
DIST="$1" VERSION="$2" REVISION="$3"
shift 3
cd "$(dirname "$0")/.."

rm -rf "$DIST"
mkdir -p "$DIST"
for arch in "$@"; do
	out="$DIST/extauthz-$VERSION-linux-$arch"
	echo "==> $out"
	CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -ldflags="-s -w -X github.com/extauthz/extauthz/internal/version.version=${VERSION} -X github.com/extauthz/extauthz/internal/version.revision=${REVISION}" -o "$out" ./cmd/extauthz
done
(cd "$DIST" && sha256sum extauthz-* > SHA256SUMS)

# The binary for this machine must say the version it was stamped with.
host="$DIST/extauthz-$VERSION-linux-$(go env GOHOSTARCH)"
if [ "$(go env GOHOSTOS)" = linux ] && [ -x "$host" ]; then
	got="$("$host" version)"
	case "$got" in
	"extauthz $VERSION (revision $REVISION, "*) echo "==> $got" ;;
	*)
		echo "release: $host version printed \"$got\", want version $VERSION revision $REVISION" >&2
		exit 1
		;;
	esac
fi
cat "$DIST/SHA256SUMS"
