{{/* Names and labels. */}}
{{- define "panther-scim.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "panther-scim.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "panther-scim.selectorLabels" -}}
app.kubernetes.io/name: {{ include "panther-scim.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "panther-scim.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "panther-scim.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "panther-scim.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "panther-scim.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "panther-scim.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Ports of the two listeners inside the pod. */}}
{{- define "panther-scim.scimPort" -}}8080{{- end -}}
{{- define "panther-scim.opsPort" -}}9090{{- end -}}

{{/*
The server's config.yaml: the user's `config` plus the keys the chart owns (listeners, store
path, TLS files). A key the chart owns that is also set in `config` is an error rather than
silently overridden.
*/}}
{{- define "panther-scim.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) -}}
{{- $server := get $cfg "server" | default dict -}}
{{- range $key := list "addr" "opsAddr" "tls" -}}
{{- if hasKey $server $key -}}
{{- fail (printf "config.server.%s is set by the chart: leave it out (the SCIM port is %s, the ops port %s; TLS comes from serverTLS.secretName)" $key (include "panther-scim.scimPort" $) (include "panther-scim.opsPort" $)) -}}
{{- end -}}
{{- end -}}
{{- if hasKey (get $cfg "store" | default dict) "path" -}}
{{- fail "config.store.path is set by the chart: the store lives on the persistent volume at /data/panther-scim.db" -}}
{{- end -}}
{{- if and (not (get $server "baseURL")) .Values.ingress.enabled -}}
{{- $_ := set $server "baseURL" (printf "https://%s" .Values.ingress.host) -}}
{{- end -}}
{{- $_ := set $server "addr" (printf "0.0.0.0:%s" (include "panther-scim.scimPort" .)) -}}
{{- $_ := set $server "opsAddr" (printf "0.0.0.0:%s" (include "panther-scim.opsPort" .)) -}}
{{- if .Values.serverTLS.secretName -}}
{{- $_ := set $server "tls" (dict "certFile" "/etc/panther-scim/tls/tls.crt" "keyFile" "/etc/panther-scim/tls/tls.key") -}}
{{- end -}}
{{- $_ := set $cfg "server" $server -}}
{{- $store := get $cfg "store" | default dict -}}
{{- $_ := set $store "path" "/data/panther-scim.db" -}}
{{- $_ := set $cfg "store" $store -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
The secrets, as environment variables read from the Secret secrets.name. The variable names
follow the config (panther.tokenEnv and the like, with their defaults); the hashes use the
server's PANTHER_SCIM_<KEY> overrides, which win over the file.
*/}}
{{- define "panther-scim.secretEnv" -}}
{{- $c := .Values.config | default dict -}}
{{- $panther := get $c "panther" | default dict -}}
{{- $auth := get $c "auth" | default dict -}}
{{- $oauth := get $auth "oauth" | default dict -}}
{{- $k := .Values.secrets.keys -}}
{{- $vars := list -}}
{{- if not $k.pantherApiToken -}}
{{- fail "secrets.keys.pantherApiToken is required: the key of the Secret that holds the Panther API token" -}}
{{- end -}}
{{- $vars = append $vars (list (get $panther "tokenEnv" | default "PANTHER_API_TOKEN") $k.pantherApiToken) -}}
{{- if $k.scimBearerTokens -}}
{{- $vars = append $vars (list (get $auth "bearerTokensEnv" | default "PANTHER_SCIM_BEARER_TOKENS") $k.scimBearerTokens) -}}
{{- end -}}
{{- if $k.scimBearerTokenHashes -}}
{{- $vars = append $vars (list "PANTHER_SCIM_AUTH_BEARER_TOKEN_HASHES" $k.scimBearerTokenHashes) -}}
{{- end -}}
{{- if $k.oauthClientSecretHash -}}
{{- $vars = append $vars (list "PANTHER_SCIM_AUTH_OAUTH_CLIENT_SECRET_HASH" $k.oauthClientSecretHash) -}}
{{- end -}}
{{- if $k.oauthSigningKey -}}
{{- $vars = append $vars (list (get $oauth "signingKeyEnv" | default "PANTHER_SCIM_OAUTH_SIGNING_KEY") $k.oauthSigningKey) -}}
{{- end -}}
{{- if $k.auditSourceSecret -}}
{{- $auditPanther := get (get $c "audit" | default dict) "panther" | default dict -}}
{{- $vars = append $vars (list (get $auditPanther "secretEnv" | default "PANTHER_SCIM_AUDIT_SECRET") $k.auditSourceSecret) -}}
{{- end -}}
{{- if $k.adminTokenHashes -}}
{{- $vars = append $vars (list "PANTHER_SCIM_AUTH_ADMIN_TOKEN_HASHES" $k.adminTokenHashes) -}}
{{- end -}}
{{- if $k.adminTokens -}}
{{- $vars = append $vars (list (get $auth "adminTokensEnv" | default "PANTHER_SCIM_ADMIN_TOKENS") $k.adminTokens) -}}
{{- end -}}
{{- range .Values.secrets.extraEnv -}}
{{- $vars = append $vars (list .env .key) -}}
{{- end -}}
{{- range $vars }}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.secrets.name }}
      key: {{ index . 1 }}
{{- end -}}
{{- end -}}

{{/* The pod's security settings: non-root (the image's distroless "nonroot" user). */}}
{{- define "panther-scim.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "panther-scim.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Config (and TLS) volumes and mounts, shared by the server and the Helm test. */}}
{{- define "panther-scim.configVolumes" -}}
- name: config
  configMap:
    name: {{ include "panther-scim.fullname" . }}
{{- if .Values.serverTLS.secretName }}
- name: tls
  secret:
    secretName: {{ .Values.serverTLS.secretName }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "panther-scim.configMounts" -}}
- name: config
  mountPath: /etc/panther-scim/config.yaml
  subPath: config.yaml
  readOnly: true
{{- if .Values.serverTLS.secretName }}
- name: tls
  mountPath: /etc/panther-scim/tls
  readOnly: true
{{- end }}
{{- end -}}
