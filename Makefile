# Each target is one command; `make test` is what CI runs (.ci/run).
.PHONY: build build-static release docker test e2e bench bench-load bench-idle lint demo mutate

# The version and revision stamped into the binary (extauthz version, the
# extauthz_build_info metric): override with `make release VERSION=v1.2.3`.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# Release binaries go here (gitignored).
DIST := dist
RELEASE_ARCHES := amd64 arm64

build: ## build the static binary into bin/extauthz
	CGO_ENABLED=0 go build -trimpath -o bin/extauthz ./cmd/extauthz

build-static: ## static binary, exactly as the Dockerfile builds it, version stamped
	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/extauthz/extauthz/internal/version.version=${VERSION} -X github.com/extauthz/extauthz/internal/version.revision=${REVISION}" -o bin/extauthz ./cmd/extauthz

release: ## static linux/amd64 and linux/arm64 binaries, version stamped, with SHA256SUMS, into dist/
	bash scripts/release.sh "$(DIST)" "$(VERSION)" "$(REVISION)" $(RELEASE_ARCHES)

docker: ## the runtime image (Dockerfile), tagged extauthz:dev, version stamped and labelled
	docker build --build-arg VERSION=${VERSION} --build-arg REVISION=${REVISION} -t extauthz:dev .

test: ## gofmt, go vet, go test -race ./..., short fuzzing: the CI command
	bash scripts/test.sh

e2e: ## end-to-end tests only: the real binary against HTTPS identity providers
	go test -race -count=1 ./e2e/

bench: ## every benchmark (BenchmarkCheck, the cache, the HTTP path), with allocations
	go test -run "^$$" -bench . -benchmem -benchtime 1s ./...

bench-load: ## load test over gRPC with ghz: no-op server, uncached, cached, 10,000 providers (Linux; see docs/benchmarks.md)
	CGO_ENABLED=0 go build -trimpath -o bin/extauthz ./cmd/extauthz
	go build -o bin/noop-authz ./scripts/benchload/noop
	GOBIN=$(CURDIR)/bin go install github.com/bojand/ghz/cmd/ghz@v0.120.0
	go run ./scripts/benchload -extauthz bin/extauthz -noop bin/noop-authz -ghz bin/ghz $(BENCH_LOAD_FLAGS)

bench-idle: ## idle CPU of 10,000 providers on one HTTPS IdP, with and without cache headers: cores, IdP requests/s, RSS (Linux; ~15 min; see docs/benchmarks.md)
	CGO_ENABLED=0 go build -trimpath -o bin/extauthz ./cmd/extauthz
	go run ./scripts/benchload -idle -extauthz bin/extauthz $(BENCH_IDLE_FLAGS)

mutate: ## mutation testing (gremlins) of the security-critical packages; hours on 2 cores (docs/testing.md)
	bash scripts/mutate.sh

lint: ## formatting and go vet
	test -z "$$(gofmt -l .)" && go vet ./...

demo: ## the embedded demo: identity provider + service on loopback
	go run ./cmd/extauthz demo
