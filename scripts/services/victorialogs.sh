# VictoriaLogs (issue 10): the sandbox's logs layer; Drill 3's identify phase queries it with LogsQL.
# Sourced by scripts/real-services.sh.
VICTORIALOGS_VERSION="v1.52.1"

provision_victorialogs() {
  have victoria-logs "$VICTORIALOGS_VERSION" && { log "victoria-logs $VICTORIALOGS_VERSION already in $BIN"; return 0; }
  log "victoria-logs: go install github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@$VICTORIALOGS_VERSION"
  GOBIN="$BIN" go install "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@$VICTORIALOGS_VERSION" \
    || return 1
  "$BIN/victoria-logs" -version >/dev/null || return 1
  stamp victoria-logs "$VICTORIALOGS_VERSION"
}
