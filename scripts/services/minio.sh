# MinIO server (issue 10): the sandbox's object store and its off-site replica. MinIO has no semver tags;
# the pseudo-version pins one commit (2026-02-12). Sourced by scripts/real-services.sh.
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"

provision_minio() {
  have minio "$MINIO_VERSION" && { log "minio $MINIO_VERSION already in $BIN"; return 0; }
  log "minio: go install github.com/minio/minio@$MINIO_VERSION (a few minutes on a cold cache)"
  GOBIN="$BIN" go install "github.com/minio/minio@$MINIO_VERSION" || return 1
  "$BIN/minio" --version >/dev/null || return 1
  stamp minio "$MINIO_VERSION"
}
