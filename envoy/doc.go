// Package envoy holds extauthz's Envoy front-proxy configuration, envoy.yaml,
// and the test that checks it against Envoy's own API (go-control-plane) and
// against the extauthz config of the docker compose demo. It has no Go API.
package envoy
