#!/usr/bin/env bash
# Real third-party servers for the sandbox (issue 10), each built or downloaded from its registry into
# $AKKO_DR_CACHE/bin (or $AKKO_DR_CACHE/<name>), pinned, idempotent: seconds when the cache is warm.
#   scripts/real-services.sh            provision every service in scripts/services/*.sh
#   scripts/real-services.sh minio      provision one
# Each scripts/services/<name>.sh defines provision_<name>; a failure is named and does not stop the others:
# the sandbox then serves that component with its emulator and the report says so.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
export AKKO_DR_CACHE="${AKKO_DR_CACHE:-$HOME/.cache/akko-dr}"
export BIN="$AKKO_DR_CACHE/bin"
mkdir -p "$BIN"
log() { printf '%s real-services: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
have() { [[ -x "$BIN/$1" && "$(cat "$BIN/$1.version" 2>/dev/null)" == "$2" ]]; }  # have NAME VERSION
stamp() { echo "$2" > "$BIN/$1.version"; }
export -f log have stamp

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  for f in "$HERE"/services/*.sh; do names+=("$(basename "$f" .sh)"); done
fi
status=0
for name in "${names[@]}"; do
  # shellcheck source=/dev/null
  source "$HERE/services/$name.sh"
  start=$SECONDS
  if ( "provision_${name//-/_}" ); then
    log "$name ready ($((SECONDS - start)) s)"
  else
    log "$name NOT provisioned: the sandbox uses its emulator for it"; status=1
  fi
done
exit $status
