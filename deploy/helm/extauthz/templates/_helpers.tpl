{{/* The name of every object: the release name, extauthz by default. */}}
{{- define "extauthz.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the pods: stable across upgrades. */}}
{{- define "extauthz.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "extauthz.labels" -}}
{{ include "extauthz.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Where the secrets are mounted (one directory each). */}}
{{- define "extauthz.secretDir" -}}/var/run/extauthz/{{ . }}{{- end -}}

{{/*
The configuration file: .Values.config with listen from .Values.ports and
the file keys of the referenced secrets.
*/}}
{{- define "extauthz.config" -}}
{{- $v := .Values -}}
{{- $cfg := deepCopy $v.config -}}
{{- if hasKey $cfg "listen" -}}
{{- fail "config.listen is set by the chart from ports; remove it from config" -}}
{{- end -}}
{{- $http := "" -}}
{{- if $v.forwardAuth.enabled -}}
{{- $http = printf "0.0.0.0:%d" (int $v.ports.http) -}}
{{- end -}}
{{- $_ := set $cfg "listen" (dict "grpc" (printf "0.0.0.0:%d" (int $v.ports.grpc)) "http" $http "admin" (printf "0.0.0.0:%d" (int $v.ports.admin))) -}}
{{- if $v.secrets.redisURL.name -}}
{{- if not $v.secrets.redisHMACKey.name -}}
{{- fail "secrets.redisURL needs secrets.redisHMACKey: snapshots in Redis are signed" -}}
{{- end -}}
{{- $jwks := $cfg.jwks | default dict -}}
{{- $redis := dict "url_file" (printf "%s/%s" (include "extauthz.secretDir" "redis") $v.secrets.redisURL.key) "namespace" $v.redisNamespace "hmac_key_file" (printf "%s/%s" (include "extauthz.secretDir" "hmac") $v.secrets.redisHMACKey.key) -}}
{{- $_ := set $jwks "redis" $redis -}}
{{- $_ := set $cfg "jwks" $jwks -}}
{{- end -}}
{{- /* In a pod the admin listener binds 0.0.0.0, which extauthz refuses
without a token: the provider API needs it, the kubelet's probes and
Prometheus's scrape (which carry none) do not. */ -}}
{{- if not $v.secrets.adminToken.name -}}
{{- fail "secrets.adminToken.name is required: the admin listener is reachable in the pod network and extauthz refuses it without admin.token_file; create a Secret with a random token (see the chart's README)" -}}
{{- end -}}
{{- $admin := $cfg.admin | default dict -}}
{{- $_ := set $admin "token_file" (printf "%s/%s" (include "extauthz.secretDir" "admin") $v.secrets.adminToken.key) -}}
{{- $_ := set $admin "open_probes" true -}}
{{- $_ := set $cfg "admin" $admin -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The secrets to mount: name of the volume/directory → the reference. */}}
{{- define "extauthz.secretMounts" -}}
{{- $m := dict -}}
{{- if .Values.secrets.redisURL.name -}}{{- $_ := set $m "redis" .Values.secrets.redisURL -}}{{- end -}}
{{- if .Values.secrets.redisHMACKey.name -}}{{- $_ := set $m "hmac" .Values.secrets.redisHMACKey -}}{{- end -}}
{{- if .Values.secrets.adminToken.name -}}{{- $_ := set $m "admin" .Values.secrets.adminToken -}}{{- end -}}
{{- toJson $m -}}
{{- end -}}
