# Each target is one command; `make test` is what CI runs (.ci/run).
.PHONY: build build-static docker test e2e bench lint demo mutate

build: ## build the static binary into bin/extauthz
	CGO_ENABLED=0 go build -trimpath -o bin/extauthz ./cmd/extauthz

build-static: ## static binary, exactly as the Dockerfile builds it
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/extauthz ./cmd/extauthz

docker: ## the runtime image (Dockerfile), tagged extauthz:dev
	docker build -t extauthz:dev .

test: ## gofmt, go vet, go test -race ./..., short fuzzing: the CI command
	bash scripts/test.sh

e2e: ## end-to-end tests only: the real binary against HTTPS identity providers
	go test -race -count=1 ./e2e/

bench: ## every benchmark (BenchmarkCheck, the cache, the HTTP path), with allocations
	go test -run "^$$" -bench . -benchmem -benchtime 1s ./...

mutate: ## mutation testing (gremlins) of the security-critical packages; hours on 2 cores (docs/testing.md)
	bash scripts/mutate.sh

lint: ## formatting and go vet
	test -z "$$(gofmt -l .)" && go vet ./...

demo: ## the embedded demo: identity provider + service on loopback
	go run ./cmd/extauthz demo
