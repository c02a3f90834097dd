# Keycloak for the sandbox's identity provider (issue 10): the org.keycloak:keycloak-quarkus-dist zip from
# Maven Central, pinned, unzipped into $AKKO_DR_CACHE/keycloak-<version> and built once for PostgreSQL
# (`kc.sh build`), so each start is an optimized production start. Sourced by scripts/real-services.sh.
KEYCLOAK_VERSION=26.7.3
KEYCLOAK_JAVA_HOME="${KEYCLOAK_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"  # Keycloak 26 needs Java >= 21
# Build-time options: the sandbox's start must use the same (akko_dr/sandbox/keycloak.py reads them back).
KEYCLOAK_BUILD_OPTIONS=(--db=postgres --health-enabled=true --cache=local)

provision_keycloak() {
  local dir="$AKKO_DR_CACHE/keycloak-$KEYCLOAK_VERSION" want
  want="$KEYCLOAK_VERSION ${KEYCLOAK_BUILD_OPTIONS[*]}"
  if [[ -x "$dir/bin/kc.sh" && "$(cat "$dir/.akko-dr-provisioned" 2>/dev/null)" == "$want" ]]; then
    log "keycloak $KEYCLOAK_VERSION already in $dir"; return 0
  fi
  [[ -x "$KEYCLOAK_JAVA_HOME/bin/java" ]] || { log "keycloak: no Java at $KEYCLOAK_JAVA_HOME (needs >= 21)"; return 1; }
  command -v mvn >/dev/null || { log "keycloak: mvn not found (apt-get install maven)"; return 1; }
  command -v unzip >/dev/null || { log "keycloak: unzip not found (apt-get install unzip)"; return 1; }
  local tmp
  tmp="$(mktemp -d "$AKKO_DR_CACHE/keycloak-download.XXXXXX")"
  trap 'rm -rf "$tmp"' RETURN
  mvn -q -B dependency:copy -Dartifact="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip" \
    -DoutputDirectory="$tmp" || { log "keycloak: Maven could not fetch keycloak-quarkus-dist $KEYCLOAK_VERSION"; return 1; }
  unzip -q "$tmp/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip" -d "$tmp/unzipped" || return 1
  JAVA_HOME="$KEYCLOAK_JAVA_HOME" "$tmp/unzipped/keycloak-$KEYCLOAK_VERSION/bin/kc.sh" build \
    "${KEYCLOAK_BUILD_OPTIONS[@]}" >"$tmp/build.log" 2>&1 \
    || { tail -5 "$tmp/build.log" >&2; log "keycloak: kc.sh build failed"; return 1; }
  rm -rf "$dir" && mv "$tmp/unzipped/keycloak-$KEYCLOAK_VERSION" "$dir"
  echo "$KEYCLOAK_JAVA_HOME" > "$dir/.akko-dr-java-home"
  echo "$want" > "$dir/.akko-dr-provisioned"
}
