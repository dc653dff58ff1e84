// Package deploy holds extauthz's deployment material: the Kubernetes
// manifests (deploy/kubernetes), the Istio provider and policy
// (deploy/istio) and the docker compose demo's extauthz config
// (deploy/compose). Its tests check them, the Dockerfile and
// docker-compose.yml against the binary's flags and config schema. It has no
// Go API.
package deploy
