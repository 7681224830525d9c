{{/* The operator's namespace. */}}
{{- define "fdckpt.namespace" -}}
{{- .Values.namespace.name -}}
{{- end -}}

{{/* The one image: image.repository:image.tag, the tag defaulting to the chart's appVersion. */}}
{{- define "fdckpt.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
