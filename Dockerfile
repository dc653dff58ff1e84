# syntax=docker/dockerfile:1
# extauthz: a static binary on a distroless, non-root base.
#   docker build -t extauthz:dev .        (or: make docker)
# deploy/deploy_test.go checks this file: the build command must be the
# Makefile's build-static command, the HEALTHCHECK must use the binary's own
# `health` subcommand on the gRPC port of the shipped configs.

FROM golang:1.26 AS build
# Stamped into the binary (extauthz version, extauthz_build_info) and the
# image's labels: docker build --build-arg VERSION=v1.2.3 --build-arg REVISION=$(git rev-parse HEAD)
ARG VERSION=dev
ARG REVISION=unknown
WORKDIR /src
# Modules first, so a source change does not re-download them.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/extauthz/extauthz/internal/version.version=${VERSION} -X github.com/extauthz/extauthz/internal/version.revision=${REVISION}" -o /out/extauthz ./cmd/extauthz
# /shared is where the compose demo's identity provider writes its CA. Docker
# fills an empty named volume with the image's directory, ownership included,
# so creating it here owned by nonroot (65532) lets the non-root demo-idp write.
RUN mkdir -p /out/shared

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
# The OCI image annotations (org.opencontainers.image.*): what, which version, which license.
LABEL org.opencontainers.image.title="extauthz" \
      org.opencontainers.image.description="Envoy ext_authz JWT service with a multi-tenant JWKS cache" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/extauthz /extauthz
COPY --from=build --chown=65532:65532 /out/shared /shared
USER 65532:65532
# 9191 gRPC ext_authz + grpc.health.v1, 9192 HTTP forward-auth, 9193 admin.
EXPOSE 9191 9192 9193
# No curl in the image: the binary is its own health client (grpc.health.v1 Check).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/extauthz","health","-addr","127.0.0.1:9191"]
ENTRYPOINT ["/extauthz"]
CMD ["-config", "/etc/extauthz/config.yaml"]
