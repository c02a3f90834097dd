#!/usr/bin/env bash
# A Docker engine for the docker target (`--target docker`), when none answers: Debian's docker.io,
# started as root with vfs storage and no bridge or iptables (the only way it starts on these machines;
# containers then use --network host). Leaves an engine that already answers alone.
#   scripts/dockerd.sh        exit 0 once `docker info` answers; 1 with the reason when it cannot
set -uo pipefail
CACHE="${AKKO_DR_CACHE:-$HOME/.cache/akko-dr}"
DEADLINE=30  # seconds for a fresh daemon to answer
log() { printf '%s dockerd: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

answers() { docker info >/dev/null 2>&1; }

answers && { log "an engine already answers"; exit 0; }
[[ $(id -u) -eq 0 ]] || { log "not root: cannot start dockerd here"; exit 1; }
if ! command -v dockerd >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null; } \
    || { log "docker.io did not install"; exit 1; }
fi
command -v docker >/dev/null || { log "no docker client"; exit 1; }
mkdir -p "$CACHE/docker"
started=$SECONDS t0=$EPOCHREALTIME
nohup dockerd --storage-driver=vfs --iptables=false --bridge=none >"$CACHE/docker/dockerd.log" 2>&1 &
echo $! >"$CACHE/docker/dockerd.pid"
until answers; do
  if ! kill -0 "$(cat "$CACHE/docker/dockerd.pid")" 2>/dev/null || ((SECONDS - started > DEADLINE)); then
    log "dockerd did not answer within ${DEADLINE} s: $(tail -n 1 "$CACHE/docker/dockerd.log")"; exit 1
  fi
  sleep 0.2
done
log "dockerd answers after $(python3 -c "print(f'{$EPOCHREALTIME - $t0:.2f}')") s (pid $(cat "$CACHE/docker/dockerd.pid"), log $CACHE/docker/dockerd.log)"
