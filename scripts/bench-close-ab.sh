#!/usr/bin/env bash
# Simultaneous A/B of proxy CPU per `Connection: close` connection: every
# proxy is loaded at the same time, so all of them see the same machine
# (other tenants, frequency, cache pressure) in every window.
#
#   scripts/bench-close-ab.sh [percore-binary ...]
#
# Layout (2-core machine): loadtest's HTTP backend and one wrk per proxy on
# CPU 0; every proxy (each percore binary given, plus HAProxy 2.6) on
# CPU 1, one thread each. Each round runs `wrk -t1 -c$CONNS -d$DUR -H
# 'Connection: close'` against all proxies at once and prints, per proxy,
# connections/s and proxy CPU per connection: (utime+stime) delta from
# /proc/<pid>/stat over the window / connections wrk completed. Ratios are
# taken against HAProxy within the same round.
#
# The proxies share CPU 1, so each is below full load and parks more often
# than when it has the core alone (loadtest's `http-close` scenario): this
# compares costs under identical conditions, it is not the throughput
# benchmark. Sequential runs on this shared machine drift by ±10-15%
# between windows; simultaneous ones kept the order of the proxies in every
# round (docs/benchmarks.md, round 4).
#
# Environment: ROUNDS (4), DUR (5), CONNS (16 per proxy), HAPROXY (1).
set -euo pipefail

ROUNDS=${ROUNDS:-4}
DUR=${DUR:-5}
CONNS=${CONNS:-16}
HAPROXY=${HAPROXY:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BINS=("$@")
[ ${#BINS[@]} -eq 0 ] && BINS=("$ROOT/target/release/percore")
LOADTEST="$ROOT/target/release/loadtest"
[ -x "$LOADTEST" ] || { echo "build first: cargo build --release --workspace" >&2; exit 1; }

WORK=$(mktemp -d /tmp/percore-close-ab.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

BACKEND=127.0.0.1:19213
taskset -c 0 "$LOADTEST" serve-http --listen "$BACKEND" --ws-listen 127.0.0.1:19214 \
    >"$WORK/backend.log" 2>&1 &
PIDS+=($!)

NAMES=() PORTS=() PPIDS=()
port=19220
i=0
for bin in "${BINS[@]}"; do
    cat >"$WORK/percore$i.toml" <<EOF
[global]
threads = [1]
maxconn = 10016
strict-limits = false
tune.splice = false

[defaults]
mode = "http"
http-reuse = "safe"
timeout = { connect = "5s", client = "30s", server = "30s", http-request = "30s", http-keep-alive = "30s" }

[[frontend]]
name = "web"
bind = ["127.0.0.1:$port"]
default_backend = "app"

[[backend]]
name = "app"
servers = [ { name = "s1", addr = "$BACKEND" } ]
EOF
    taskset -c 1 "$bin" -c "$WORK/percore$i.toml" >"$WORK/percore$i.log" 2>&1 &
    PIDS+=($!) PPIDS+=($!) NAMES+=("$(basename "$bin")") PORTS+=($port)
    port=$((port + 1)) i=$((i + 1))
done
if [ "$HAPROXY" = 1 ]; then
    cat >"$WORK/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 10016
    no strict-limits
    nosplice
defaults
    mode http
    option http-keep-alive
    http-reuse safe
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-request 30s
    timeout http-keep-alive 30s
frontend web
    bind 127.0.0.1:$port
    default_backend app
backend app
    server s1 $BACKEND
EOF
    taskset -c 1 haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
    PIDS+=($!) PPIDS+=($!) NAMES+=("haproxy") PORTS+=($port)
fi
sleep 1

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
n=${#NAMES[@]}
printf 'round'
for name in "${NAMES[@]}"; do printf ' | %s conn/s | %s µs/conn' "$name" "$name"; done
printf '\n'
for r in $(seq "$ROUNDS"); do
    declare -a t0=()
    for ((k = 0; k < n; k++)); do t0[$k]=$(cpu_ticks "${PPIDS[$k]}"); done
    for ((k = 0; k < n; k++)); do
        taskset -c 0 wrk -t1 -c"$CONNS" -d"${DUR}s" -H 'Connection: close' \
            "http://127.0.0.1:${PORTS[$k]}/bytes/100" >"$WORK/wrk$k.txt" 2>&1 &
    done
    wait_pids=$(jobs -p | tail -n "$n")
    # shellcheck disable=SC2086
    wait $wait_pids 2>/dev/null || true
    printf '%s' "$r"
    for ((k = 0; k < n; k++)); do
        t1=$(cpu_ticks "${PPIDS[$k]}")
        done_=$(awk '/requests in/{print $1}' "$WORK/wrk$k.txt")
        awk -v t0="${t0[$k]}" -v t1="$t1" -v n="$done_" -v d="$DUR" -v hz="$hz" \
            'BEGIN { printf " | %d | %.1f", n / d, (t1 - t0) * 1e6 / hz / n }'
    done
    printf '\n'
done
