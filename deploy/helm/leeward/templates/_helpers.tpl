{{- define "leeward.name" -}}
{{- .Chart.Name -}}
{{- end -}}

{{- define "leeward.labels" -}}
app.kubernetes.io/name: {{ include "leeward.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "leeward.selectorLabels" -}}
app.kubernetes.io/name: {{ include "leeward.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "leeward.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "leeward.socketPath" -}}
{{ trimSuffix "/" .Values.socket.hostDir }}/{{ .Values.socket.name }}
{{- end -}}

{{- /* One TOML value. Helm reads every YAML number as a float64, and the daemon refuses
a float for an integer key, so integral numbers are written as integers (the daemon
takes an integer for a float key). Strings and lists of strings as JSON, which TOML reads. */ -}}
{{- define "leeward.tomlValue" -}}
{{- if and (kindIs "float64" .) (eq (floor .) .) -}}
{{ int64 . }}
{{- else if or (kindIs "float64" .) (kindIs "string" .) (kindIs "bool" .) (kindIs "slice" .) -}}
{{ toJson . }}
{{- else -}}
{{ fail (printf "config values are numbers, strings or lists of strings, got %v" .) }}
{{- end -}}
{{- end -}}

{{- /* The daemon's config file: .Values.config plus the keys other values own. */ -}}
{{- define "leeward.configToml" -}}
{{- range $owned := list "socket_path" "metrics_port" "metrics_address" }}
{{- if hasKey $.Values.config $owned }}
{{- fail (printf "config.%s is set from socket.* / metrics.*; remove it from config" $owned) }}
{{- end }}
{{- end -}}
# Rendered from the chart's values (config); LEEWARD_* variables override it key by key.
socket_path = {{ include "leeward.socketPath" . | toJson }}
# The metrics endpoint must listen on the pod's address for Prometheus to scrape it.
metrics_port = {{ int64 .Values.metrics.port }}
metrics_address = "0.0.0.0"
{{- range $key, $value := .Values.config }}
{{- if not (kindIs "invalid" $value) }}
{{ $key }} = {{ include "leeward.tomlValue" $value }}
{{- end }}
{{- end }}
{{ end -}}

{{- define "leeward.shutdownGraceSecs" -}}
{{- $grace := 10.0 -}}
{{- if not (kindIs "invalid" (index .Values.config "shutdown_grace_secs")) -}}
{{- $grace = index .Values.config "shutdown_grace_secs" -}}
{{- end -}}
{{ $grace }}
{{- end -}}

{{- /* The start wrapper of both containers. Without privileged, the runtime mounts the
container's own cgroup (its cgroup namespace root: on cgroup v2 the only delegated
subtree a pod can have) read-only; with CAP_SYS_ADMIN it can be remounted read-write,
so the daemon creates its per-job boxes below it. If that fails the daemon falls back
(limits_backend = auto) and doctor says which backend applies. Then exec: the daemon is
PID 1 and gets SIGTERM itself. */ -}}
{{- define "leeward.startCommand" -}}
- /bin/sh
- -c
- |
  while read -r _ dir type options _; do
    if [ "$dir" = /sys/fs/cgroup ] && [ "$type" = cgroup2 ] && [ "${options%%,*}" = ro ]; then
      mount -o remount,rw /sys/fs/cgroup || echo "leeward: cannot remount /sys/fs/cgroup read-write" >&2
    fi
  done < /proc/self/mounts
  exec "$@"
- leeward-start
{{- end -}}

{{- define "leeward.securityContext" -}}
{{- if eq .Values.securityProfile "privileged" -}}
privileged: true
runAsUser: 0
{{- else if eq .Values.securityProfile "minimal" -}}
runAsUser: 0
runAsNonRoot: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
  # Measured: the daemon builds sandboxes and runs jobs (cgroup v1 and rlimit limits,
  # rw mounts, seccomp notify, Landlock) with these four and fails without any of them.
  add:
    - SYS_ADMIN  # unshare the slot's namespaces as root, mount, pivot_root, remount the cgroup
    - SETUID     # run each sandbox as its own unused host uid, write the job's uid_map
    - SETGID     # the same for gids and setgroups
    - KILL       # end sandboxes, which run as those other uids
# A runtime filter would be inherited by every sandbox: its ERRNO outranks leeward's
# user notification (denials would no longer be reported by name), and its allowlist,
# which differs between runtime versions, would have to admit unshare, mount, pivot_root
# and the new mount API the daemon uses. Each job gets leeward's own narrower filter.
seccompProfile:
  type: Unconfined
# The runtime's default AppArmor profile denies mount(2), which building a sandbox needs.
appArmorProfile:
  type: Unconfined
{{- else -}}
{{- fail (printf "securityProfile must be minimal or privileged, got %q" .Values.securityProfile) -}}
{{- end -}}
{{- end -}}
