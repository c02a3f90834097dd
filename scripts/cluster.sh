#!/usr/bin/env bash
# A real Kubernetes control plane for the live path, built from the Go module proxy (issue 11).
#   scripts/cluster.sh build   build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok,
#                              velero and its AWS plugin into $AKKO_DR_CACHE/bin (idempotent: seconds when warm)
#   scripts/cluster.sh up DIR  start them on 127.0.0.1 (generated keys and tokens, kwok nodes); writes
#                              DIR/admin.kubeconfig, DIR/harness.kubeconfig (a token with no bindings) and
#                              DIR/env (ports, pids)
#   scripts/cluster.sh down DIR  stop them by pid
# Versions are pinned here; nothing is vendored into the repository.
set -euo pipefail

CACHE="${AKKO_DR_CACHE:-$HOME/.cache/akko-dr}"
BIN="$CACHE/bin"
SRC="$CACHE/src"
K8S=v1.37.2            # k8s.io/kubernetes
K8S_STAGING=v0.37.2    # its staging modules (k8s.io/api, k8s.io/apiserver, ...)
ETCD=v3.7.3            # go.etcd.io/etcd/server/v3
KWOK=v0.8.0            # sigs.k8s.io/kwok
VELERO=v1.18.3         # github.com/vmware-tanzu/velero
VELERO_AWS=v1.14.3     # github.com/vmware-tanzu/velero-plugin-for-aws
KOPIA_FORK=github.com/project-velero/kopia@v0.0.0-20251230033609-d946b1e75197
CLI_RUNTIME=v0.33.13   # v0.33.12, which velero asks for, is not served by the proxy
export GOFLAGS="-mod=mod" CGO_ENABLED=0

log() { printf '%s cluster.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# have NAME VERSION: the binary is built and stamped with this version
have() { [[ -x "$BIN/$1" && "$(cat "$BIN/$1.version" 2>/dev/null)" == "$2" ]]; }
stamp() { echo "$2" > "$BIN/$1.version"; }

module() {  # module DIR NAME: a throwaway module to build from
  mkdir -p "$SRC/$1"
  cd "$SRC/$1"
  [[ -f go.mod ]] || go mod init "akko-dr.local/$1" >/dev/null 2>&1
}

build_etcd() {
  have etcd "$ETCD" && return
  log "building etcd $ETCD"
  module etcd
  go get "go.etcd.io/etcd/server/v3@$ETCD" >/dev/null
  go build -o "$BIN/etcd" go.etcd.io/etcd/server/v3 && stamp etcd "$ETCD"
}

k8s_module() {
  module kubernetes
  if ! grep -q "k8s.io/kubernetes $K8S" go.mod 2>/dev/null; then
    go mod edit -require="k8s.io/kubernetes@$K8S"
    local gomod
    gomod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S.mod"
    go mod download -json "k8s.io/kubernetes@$K8S" >/dev/null
    # every `k8s.io/x => ./staging/...` of kubernetes' own go.mod becomes a pinned module version
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$gomod" | awk '{print $1}' | sort -u | while read -r m; do
      go mod edit -replace="$m=$m@$K8S_STAGING"
    done
    go mod tidy >/dev/null 2>&1 || true
  fi
}

build_k8s() {  # build_k8s NAME
  have "$1" "$K8S" && return
  log "building $1 $K8S"
  k8s_module
  go build -o "$BIN/$1" "k8s.io/kubernetes/cmd/$1" && stamp "$1" "$K8S"
}

build_kwok() {
  have kwok "$KWOK" && return
  log "building kwok $KWOK"
  GOBIN="$BIN" go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK" && stamp kwok "$KWOK"
}

build_velero() {
  if ! have velero "$VELERO"; then
    log "building velero $VELERO"
    module velero
    go mod edit -require="github.com/vmware-tanzu/velero@$VELERO" \
      -replace="github.com/kopia/kopia=$KOPIA_FORK" -replace="k8s.io/cli-runtime=k8s.io/cli-runtime@$CLI_RUNTIME"
    go mod tidy >/dev/null 2>&1 || true
    go build -o "$BIN/velero" github.com/vmware-tanzu/velero/cmd/velero && stamp velero "$VELERO"
  fi
  if ! have velero-plugin-for-aws "$VELERO_AWS"; then
    log "building velero-plugin-for-aws $VELERO_AWS"
    module velero-plugin-for-aws
    go get "github.com/vmware-tanzu/velero-plugin-for-aws@$VELERO_AWS" >/dev/null 2>&1 || true
    go build -o "$BIN/velero-plugin-for-aws" github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws \
      && stamp velero-plugin-for-aws "$VELERO_AWS"
  fi
}

build() {
  mkdir -p "$BIN"
  local failed=()
  for piece in etcd "k8s kube-apiserver" "k8s kube-controller-manager" "k8s kube-scheduler" kwok velero; do
    set -- $piece
    if [[ $1 == k8s ]]; then ( build_k8s "$2" ) || failed+=("$2"); else ( "build_$1" ) || failed+=("$1"); fi
  done
  if ((${#failed[@]})); then log "not built: ${failed[*]}"; return 1; fi
  log "built into $BIN"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

kubeconfig() {  # kubeconfig FILE SERVER TOKEN
  cat > "$1" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: akko-dr, cluster: {server: "$2", insecure-skip-tls-verify: true}}]
users: [{name: akko-dr, user: {token: "$3"}}]
contexts: [{name: akko-dr, context: {cluster: akko-dr, user: akko-dr}}]
current-context: akko-dr
YAML
  chmod 600 "$1"
}

start() {  # start DIR NAME ARGS...: a process of the control plane, its log and pid in DIR
  local dir=$1 name=$2; shift 2
  "$@" > "$dir/$name.log" 2>&1 &
  echo $! > "$dir/$name.pid"
}

wait_ready() {  # wait_ready URL TOKEN SECONDS
  local end=$((SECONDS + $3))
  until python3 - "$1/readyz" "$2" >/dev/null 2>&1 <<'PY'
import ssl, sys, urllib.request
request = urllib.request.Request(sys.argv[1], headers={"Authorization": f"Bearer {sys.argv[2]}"})
urllib.request.urlopen(request, timeout=2, context=ssl._create_unverified_context())
PY
  do
    ((SECONDS < end)) || { log "not ready within $3s: $1"; return 1; }
    sleep 0.2
  done
}

kwok_stages() {  # kwok's own "fast" stages (nodes ready, pods running), from its module in the Go cache
  local stages
  stages="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK/kustomize/stage"
  for f in "$stages"/node/fast/*.yaml "$stages"/node/heartbeat-with-lease/*.yaml "$stages"/pod/fast/*.yaml; do
    [[ $(basename "$f") == kustomization.yaml ]] && continue
    echo "---"; cat "$f"
  done
}

kwok_crds() {  # kwok_crds SERVER TOKEN: kwok's PortForward and Exec kinds, so that a test maps a pod's port
  # to a real server and `exec` to a real command at run time (kwok serves them as the pods' kubelet)
  local crds
  crds="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK/kustomize/crd/bases"
  for kind in portforwards execs; do
    python3 - "$1/apis/apiextensions.k8s.io/v1/customresourcedefinitions" "$2" \
      "$crds/kwok.x-k8s.io_$kind.yaml" <<'PY'
import ssl, sys, urllib.request
request = urllib.request.Request(sys.argv[1], data=open(sys.argv[3], "rb").read(), method="POST", headers={
    "Authorization": f"Bearer {sys.argv[2]}", "Content-Type": "application/yaml"})
urllib.request.urlopen(request, timeout=10, context=ssl._create_unverified_context())
PY
  done
}

up() {
  local dir=${1:?usage: $0 up DIR}
  mkdir -p "$dir/etcd" "$dir/certs"
  dir=$(cd "$dir" && pwd)
  local etcd_port peer_port api_port kwok_port admin harness t0=$SECONDS
  etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port); kwok_port=$(free_port)
  admin=$(openssl rand -hex 16); harness=$(openssl rand -hex 16)
  printf '%s,akko-dr-admin,1,system:masters\n%s,akko-dr-harness,2,\n' "$admin" "$harness" > "$dir/tokens.csv"
  chmod 600 "$dir/tokens.csv"
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
  printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Metadata}]\n' > "$dir/audit-policy.yaml"
  start "$dir" etcd "$BIN/etcd" --data-dir "$dir/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "default=http://127.0.0.1:$peer_port"
  start "$dir" kube-apiserver "$BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --secure-port "$api_port" --cert-dir "$dir/certs" \
    --token-auth-file "$dir/tokens.csv" --authorization-mode RBAC \
    --service-account-key-file "$dir/sa.pub" --service-account-signing-key-file "$dir/sa.key" \
    --service-account-issuer https://kubernetes.default.svc --service-cluster-ip-range 10.96.0.0/24 \
    --audit-log-path "$dir/audit.log" --audit-policy-file "$dir/audit-policy.yaml" \
    --kubelet-preferred-address-types InternalIP
  local server="https://127.0.0.1:$api_port"
  kubeconfig "$dir/admin.kubeconfig" "$server" "$admin"
  kubeconfig "$dir/harness.kubeconfig" "$server" "$harness"
  wait_ready "$server" "$admin" 60
  start "$dir" kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$dir/admin.kubeconfig" \
    --leader-elect=false --controllers='*,-nodeipam,-serviceaccount-token' \
    --service-account-private-key-file "$dir/sa.key" --bind-address 127.0.0.1 --secure-port "$(free_port)" \
    --node-monitor-grace-period 10m  # kwok's heartbeats come late on a loaded machine: no NotReady flapping
  start "$dir" kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$dir/admin.kubeconfig" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$(free_port)"
  kwok_stages > "$dir/kwok-stages.yaml"
  kwok_crds "$server" "$admin"
  # kwok is also the nodes' kubelet (port-forward, exec): the API server reaches it on 127.0.0.1; the
  # node name gives every node a Hostname address (without it kwok's node stage empties the addresses);
  # node leases keep the nodes Ready (without them the node controller marked the node Unknown every ~50 s
  # here, and its pods NotReady for good: a rollout then never completes)
  start "$dir" kwok "$BIN/kwok" --kubeconfig "$dir/admin.kubeconfig" --manage-all-nodes=true \
    --config "$dir/kwok-stages.yaml" --server-address "127.0.0.1:$kwok_port" --node-ip 127.0.0.1 \
    --node-name localhost \
    --node-port "$kwok_port" --enable-crds PortForward,Exec --node-lease-duration-seconds 40
  printf 'SERVER=%s\nETCD_PORT=%s\nSTARTED_IN=%s\nKWOK_PORT=%s\n' "$server" "$etcd_port" "$((SECONDS - t0))" \
    "$kwok_port" > "$dir/env"
  log "control plane up at $server in $((SECONDS - t0))s (kubeconfigs in $dir)"
}

down() {
  local dir=${1:?usage: $0 down DIR} pid
  for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    [[ -f "$dir/$name.pid" ]] || continue
    pid=$(cat "$dir/$name.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true  # kube-apiserver takes ~30 s to drain on SIGTERM
    rm -f "$dir/$name.pid"
  done
}

case "${1:-}" in
  build) build ;;
  up) up "${2:-}" ;;
  down) down "${2:-}" ;;
  *) echo "usage: $0 build | up DIR | down DIR" >&2; exit 2 ;;
esac
