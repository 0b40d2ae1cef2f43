#!/usr/bin/env bash
# Builds the relay's container image with podman and checks what the Dockerfile promises:
# it runs as uid 10001, on a read-only root file system, and its HEALTHCHECK passes.
#
#   deploy/tests/image-podman.sh [--build-stage] [BASE_ROOT_DIR]
#
# By default the Dockerfile's runtime stage is built unchanged and its build stage replaced
# by a relay binary built on this (bookworm) host. With --build-stage the whole Dockerfile
# runs unchanged, the release build inside the container included, from a clean export of
# HEAD; where rust:1-slim-bookworm cannot be pulled, an image of that name is made from
# debian:bookworm-slim, gcc, and this host's Rust toolchain and CA certificates (so that
# cargo reaches crates.io through whatever TLS proxy the host trusts).
#
# If debian:bookworm-slim cannot be pulled, BASE_ROOT_DIR (a bookworm root file system,
# e.g. from `debootstrap --variant=minbase bookworm DIR`) is imported under that name.
# Works around what a nested container host lacks: crun refuses hybrid cgroups (runc is
# used) and raising rlimits is not allowed (the container's are set below the host's).
# `--format docker`: OCI images carry no HEALTHCHECK.
set -euo pipefail
cd "$(dirname "$0")/../.."
build_stage=0
if [ "${1:-}" = --build-stage ]; then
    build_stage=1
    shift
fi
base_root="${1:-}"
podman=(podman --storage-driver vfs --runtime runc)
limits=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
image=localhost/cable-tunnel-server:test
name="cable-image-test-$$"
work="$(mktemp -d)"
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    "${podman[@]}" rm -f "$name" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

if ! "${podman[@]}" image exists docker.io/library/debian:bookworm-slim \
    && ! "${podman[@]}" pull -q docker.io/library/debian:bookworm-slim >/dev/null 2>&1; then
    if [ -z "$base_root" ]; then
        echo "image-podman: debian:bookworm-slim cannot be pulled; pass a bookworm root dir" >&2
        exit 2
    fi
    echo "image-podman: importing $base_root as debian:bookworm-slim (registry unreachable)"
    tar -C "$base_root" --exclude=./lib/modules -c . \
        | "${podman[@]}" import -q - docker.io/library/debian:bookworm-slim >/dev/null
fi

if [ "$build_stage" = 1 ]; then
    rust_image=docker.io/library/rust:1-slim-bookworm
    if ! "${podman[@]}" image exists "$rust_image" \
        && ! "${podman[@]}" pull -q "$rust_image" >/dev/null 2>&1; then
        echo "image-podman: making $rust_image from this host's toolchain (registry unreachable)"
        toolchain="$(rustc --print sysroot)"
        mkdir -p "$work/rust/toolchain" "$work/rust/ca"
        cp -a "$toolchain/bin" "$toolchain/lib" "$toolchain/libexec" "$work/rust/toolchain/"
        cp /usr/local/share/ca-certificates/*.crt "$work/rust/ca/" 2>/dev/null || true
        cat >"$work/rust/Containerfile" <<'EOF'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
COPY toolchain /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EOF
        "${podman[@]}" build -q --network host --pull=never "${limits[@]}" -t "$rust_image" "$work/rust" >/dev/null
    fi
    # The context a `docker build` from a clean checkout sees (.dockerignore as BuildKit reads it).
    mkdir -p "$work/context"
    git archive HEAD | tar -x -C "$work/context"
    cp deploy/Dockerfile.dockerignore "$work/context/.dockerignore"
    started=$SECONDS
    "${podman[@]}" build -q --network host --format docker --pull=never \
        --ulimit nofile=4096:4096 --ulimit nproc=8192:8192 \
        -t "$image" -f deploy/Dockerfile "$work/context" >/dev/null
    echo "image-podman: built both stages of deploy/Dockerfile in $((SECONDS - started)) s"
else
    cargo build --release --locked -p cable-tunnel-server
    mkdir -p "$work/out" "$work/deploy/docker"
    install -m 0755 target/release/cable-tunnel-server "$work/out/cable-tunnel-server"
    cp deploy/docker/entrypoint.sh "$work/deploy/docker/entrypoint.sh"
    {
        printf 'FROM scratch AS build\nCOPY out/cable-tunnel-server /out/cable-tunnel-server\n'
        sed -n '/^FROM debian:bookworm-slim/,$p' deploy/Dockerfile
    } >"$work/Containerfile"
    "${podman[@]}" build -q --format docker --pull=never "${limits[@]}" -t "$image" -f "$work/Containerfile" "$work" >/dev/null
fi

# Host network: a nested host may have no bridge networking; the admin port is picked free.
admin_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${podman[@]}" run -d --name "$name" --read-only --network host "${limits[@]}" \
    -e CABLE_RELAY_LISTEN=127.0.0.1:0 -e CABLE_RELAY_ADMIN_LISTEN="127.0.0.1:$admin_port" \
    -e CABLE_RELAY_ROUTING_ID=000001 "$image" >/dev/null

failures=0
check() {
    if "$@"; then echo "image-podman: ok: $what"; else echo "image-podman: FAIL: $what"; failures=$((failures + 1)); fi
}
for _ in $(seq 1 50); do
    "${podman[@]}" exec "$name" /usr/local/bin/cable-entrypoint healthcheck && break
    sleep 0.2
done
what="HEALTHCHECK (cable-entrypoint healthcheck) passes"
check "${podman[@]}" healthcheck run "$name"
what="runs as uid 10001"
check test "$("${podman[@]}" exec "$name" id -u)" = 10001
what="root file system is read-only"
check test "$("${podman[@]}" exec "$name" sh -c 'touch /probe 2>&1 || echo refused' | tail -1 | grep -c 'Read-only\|refused')" -ge 1
what="/healthz answers the host"
check sh -c "python3 -c 'import urllib.request,sys; sys.exit(0 if urllib.request.urlopen(\"http://127.0.0.1:$admin_port/healthz\").status == 200 else 1)'"
"${podman[@]}" logs "$name" 2>&1 | tail -3
size="$("${podman[@]}" image inspect --format '{{.Size}}' "$image")"
echo "image-podman: image $image, $((size / 1024 / 1024)) MiB"
exit "$failures"
