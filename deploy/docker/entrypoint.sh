#!/bin/bash
# Container entrypoint for cable-tunnel-server.
#
#   cable-entrypoint [cable-tunnel-server ARGS...]   run the relay (the image's CMD)
#   cable-entrypoint healthcheck                     exit 0 if /healthz answers 200
#
# Routing id: one instance owns one routing id. If CABLE_RELAY_ROUTING_ID is not set, it is
# derived from the StatefulSet pod ordinal (the number after the last "-" of POD_NAME, or
# of the host name): CABLE_RELAY_ROUTING_ID_PREFIX (0-5 decimal digits, default empty) followed
# by the ordinal zero-padded to the remaining digits. Pod cable-relay-7 with prefix "1"
# gets routing id 100007. Decimal digits keep the id the same in upper and lower case,
# so path-based routing needs no case folding.
set -euo pipefail

die() {
    echo "cable-entrypoint: $*" >&2
    exit 64
}

healthcheck() {
    # No curl in the runtime image: speak HTTP/1.0 over bash's /dev/tcp.
    local addr="${CABLE_RELAY_ADMIN_LISTEN:-127.0.0.1:9090}"
    local host="${addr%:*}" port="${addr##*:}"
    case "$host" in "" | "0.0.0.0" | "[::]") host=127.0.0.1 ;; esac
    host="${host#[}"
    host="${host%]}"
    local status request
    printf -v request 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "$host"
    exec 3<>"/dev/tcp/$host/$port" || return 1
    # One write: a server that answers after the first chunk must not see a second one.
    printf '%s' "$request" >&3
    IFS=' ' read -r -t 5 _ status _ <&3 || return 1
    exec 3<&-
    [ "$status" = "200" ]
}

derive_routing_id() {
    local prefix="${CABLE_RELAY_ROUTING_ID_PREFIX:-}"
    [[ "$prefix" =~ ^[0-9]{0,5}$ ]] || die "CABLE_RELAY_ROUTING_ID_PREFIX must be 0-5 decimal digits, got '$prefix'"
    local name="${POD_NAME:-${HOSTNAME:-$(hostname)}}"
    local ordinal="${name##*-}"
    [[ "$name" == *-* && "$ordinal" =~ ^[0-9]+$ ]] ||
        die "cannot derive a routing id: '$name' has no StatefulSet ordinal; set CABLE_RELAY_ROUTING_ID"
    local width=$((6 - ${#prefix}))
    ordinal=$((10#$ordinal))
    ((${#ordinal} <= width)) || die "ordinal $ordinal does not fit in $width digits after prefix '$prefix'"
    printf '%s%0*d' "$prefix" "$width" "$ordinal"
}

if [ "${1:-}" = "healthcheck" ]; then
    healthcheck
    exit
fi

if [ -z "${CABLE_RELAY_ROUTING_ID:-}" ]; then
    CABLE_RELAY_ROUTING_ID="$(derive_routing_id)"
    export CABLE_RELAY_ROUTING_ID
fi
[ "$#" -gt 0 ] || set -- cable-tunnel-server
exec "$@"
