# Barman's cloud commands (issue 14): WAL archiving, base backups and point-in-time restores against the
# sandbox's S3 endpoint. Barman 3.20 needs Python >= 3.12; 3.19.1 is the newest release for the harness's
# Python 3.11. PostgreSQL runs archive_command as its own user, so the tools go where that user can execute
# them: $AKKO_DR_TOOLS, else /var/cache/akko-dr as root (root's home is closed to it), else $AKKO_DR_CACHE.
# Must match akko_dr/sandbox/wal.py (BARMAN_VERSION, tools_dir). Sourced by scripts/real-services.sh.
BARMAN_VERSION="3.19.1"

provision_barman() {
  local tools
  if [[ -n "${AKKO_DR_TOOLS:-}" ]]; then tools="$AKKO_DR_TOOLS"
  elif [[ "$(id -u)" == 0 ]]; then tools=/var/cache/akko-dr
  else tools="$AKKO_DR_CACHE"; fi
  local venv="$tools/barman-$BARMAN_VERSION"
  if [[ -x "$venv/bin/barman-cloud-wal-archive" ]]; then
    log "barman $BARMAN_VERSION already in $venv"; return 0
  fi
  log "barman: pip install barman[cloud]==$BARMAN_VERSION into $venv"
  mkdir -p "$tools" && chmod 755 "$tools" || return 1
  local py=python3  # as root, the system Python: a pyenv one under /root is closed to the server's user
  [[ "$(id -u)" == 0 && -x /usr/bin/python3 ]] && py=/usr/bin/python3
  "$py" -m venv "$venv" || return 1
  "$venv/bin/pip" install --quiet --disable-pip-version-check "barman[cloud]==$BARMAN_VERSION" || return 1
  "$venv/bin/barman-cloud-wal-archive" --version >/dev/null || return 1
  chmod -R a+rX "$venv"
}
