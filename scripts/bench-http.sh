#!/usr/bin/env bash
# Per-core cost of HTTP and TCP request/response relaying: percore against
# HAProxy, same backend, same client, same run, alternating.
#
#   scripts/bench-http.sh [percore-binary ...]
#
# Layout (2-core machine): nginx (1 worker) and wrk on CPU 0, each proxy
# alone on CPU 1. Every proxy runs through every scenario once per round:
#   ka     mode http, keep-alive              (wrk -c64)
#   close  mode http, `Connection: close`     (wrk -c64 -H 'Connection: close')
#   tcp    mode tcp relay of keep-alive HTTP  (wrk -c64 through a tcp frontend)
# and reports req/s and proxy CPU per request: (utime+stime) delta from
# /proc/<pid>/stat over the run divided by the requests wrk completed. CPU per
# request is the figure to trust on a shared machine; req/s depends on what
# else runs on CPU 0.
#
# SIDE_BY_SIDE=1 loads every proxy at the same time instead (one wrk per
# proxy, all on CPU 0, all proxies sharing CPU 1), so all of them see the
# same machine in every window: sequential windows on a shared machine drift
# by ±10-15%, as much as the differences an A/B looks for. Each proxy then
# runs below full load and waits for events more often; it compares costs
# under identical conditions, it is not a throughput benchmark
# (docs/benchmarks.md, round 4).
#
# BACKEND=loadtest replaces nginx with loadtest's own HTTP server (the one
# `loadtest all` uses, 100 B responses; needs target/release/loadtest).
#
# Environment: ROUNDS (3), DUR (10s), CONNS (64, per proxy), SCENARIOS
# ("ka close tcp"), HAPROXY (1: include HAProxy 2.6), SIDE_BY_SIDE (0),
# BACKEND (nginx).
# Several percore binaries may be given (A/B in one run); default:
# target/release/percore.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DUR=${DUR:-10s}
CONNS=${CONNS:-64}
SCENARIOS=${SCENARIOS:-"ka close tcp"}
HAPROXY=${HAPROXY:-1}
SIDE_BY_SIDE=${SIDE_BY_SIDE:-0}
BACKEND=${BACKEND:-nginx}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BINS=("$@")
[ ${#BINS[@]} -eq 0 ] && BINS=("$ROOT/target/release/percore")

WORK=$(mktemp -d /tmp/percore-bench.XXXXXX)
chmod 755 "$WORK" # nginx workers read the file as an unprivileged user
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

BACKEND_PORT=19080
if [ "$BACKEND" = loadtest ]; then
    # --- backend: loadtest's HTTP server (the suite's), 100 B responses ---
    [ -x "$ROOT/target/release/loadtest" ] ||
        { echo "BACKEND=loadtest: cargo build --release --workspace first" >&2; exit 1; }
    taskset -c 0 "$ROOT/target/release/loadtest" serve-http \
        --listen "127.0.0.1:$BACKEND_PORT" --ws-listen "127.0.0.1:$((BACKEND_PORT + 1))" \
        >"$WORK/backend.log" 2>&1 &
    PIDS+=($!)
    URL_PATH=/bytes/100
else
# --- backend: nginx, one worker, a small static file -----------------------
mkdir -p "$WORK/www" "$WORK/nginx"
printf 'hello, percore\n' > "$WORK/www/index.html"
cat > "$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log crit;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:$BACKEND_PORT backlog=4096;
        root $WORK/www;
        location / { }
    }
}
EOF
taskset -c 0 nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
PIDS+=($!)
URL_PATH=/
fi

# --- proxies -----------------------------------------------------------------
# name:pid:http-port:tcp-port
PROXIES=()
port=19100
start_percore() {
    local bin=$1 i=$2
    local http=$port tcp=$((port + 1))
    port=$((port + 10))
    cat > "$WORK/percore$i.toml" <<EOF
[global]
threads = [1]
maxconn = 4000

[defaults]
mode = "http"
timeout = { connect = "5s", client = "30s", server = "30s", http-request = "10s", http-keep-alive = "10s" }

[[frontend]]
name = "web"
bind = ["127.0.0.1:$http"]
default_backend = "app"

[[backend]]
name = "app"
servers = [ { name = "n1", addr = "127.0.0.1:$BACKEND_PORT" } ]

[[frontend]]
name = "raw"
mode = "tcp"
bind = ["127.0.0.1:$tcp"]
default_backend = "rawapp"

[[backend]]
name = "rawapp"
mode = "tcp"
servers = [ { name = "n1", addr = "127.0.0.1:$BACKEND_PORT" } ]
EOF
    taskset -c 1 "$bin" -c "$WORK/percore$i.toml" 2>"$WORK/percore$i.log" &
    PIDS+=($!)
    PROXIES+=("percore$i:$!:$http:$tcp")
}
start_haproxy() {
    local http=$port tcp=$((port + 1))
    port=$((port + 10))
    cat > "$WORK/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4000
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 10s
frontend web
    bind 127.0.0.1:$http
    default_backend app
backend app
    server n1 127.0.0.1:$BACKEND_PORT
frontend raw
    mode tcp
    bind 127.0.0.1:$tcp
    default_backend rawapp
backend rawapp
    mode tcp
    server n1 127.0.0.1:$BACKEND_PORT
EOF
    taskset -c 1 haproxy -db -f "$WORK/haproxy.cfg" 2>"$WORK/haproxy.log" &
    PIDS+=($!)
    PROXIES+=("haproxy:$!:$http:$tcp")
}

i=0
for b in "${BINS[@]}"; do start_percore "$b" $i; i=$((i + 1)); done
[ "$HAPROXY" = 1 ] && start_haproxy
sleep 1

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

i=0; for b in "${BINS[@]}"; do echo "# percore$i = $b"; i=$((i + 1)); done
echo "# $(date -u +%FT%TZ) $(uname -r) wrk -t1 -c$CONNS -d$DUR; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %-5s %-10s %10s %10s %8s\n' round case proxy req/s us/req load1
# Sets `url` and `hdr` for scenario $1 on a proxy's ports $2 (http), $3 (tcp).
target() {
    case $1 in
        ka) url="http://127.0.0.1:$2$URL_PATH"; hdr=() ;;
        close) url="http://127.0.0.1:$2$URL_PATH"; hdr=(-H "Connection: close") ;;
        tcp) url="http://127.0.0.1:$3$URL_PATH"; hdr=() ;;
    esac
}

# Prints one result line: round, scenario, proxy, CPU ticks before and
# after, wrk's output.
report() {
    local reqs rps errs us
    reqs=$(awk '/requests in/ {print $1}' <<<"$6")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$6")
    errs=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' <<<"$6")
    us=$(awk -v d=$(($5 - $4)) -v r="$reqs" -v t="$TCK" \
        'BEGIN { printf "%.1f", (r > 0 ? d / t * 1e6 / r : 0) }')
    printf '%-6s %-5s %-10s %10s %10s %8s %s\n' "$1" "$2" "$3" "$rps" "$us" \
        "$(cut -d' ' -f1 /proc/loadavg)" "$errs"
}

for round in $(seq 1 "$ROUNDS"); do
    for sc in $SCENARIOS; do
        if [ "$SIDE_BY_SIDE" = 1 ]; then
            befores=() wrks=()
            for k in "${!PROXIES[@]}"; do
                IFS=: read -r name pid http tcp <<<"${PROXIES[$k]}"
                target "$sc" "$http" "$tcp"
                befores[k]=$(cpu_ticks "$pid")
                taskset -c 0 wrk -t1 -c"$CONNS" -d"$DUR" "${hdr[@]}" "$url" >"$WORK/wrk$k.out" &
                wrks+=($!)
            done
            wait "${wrks[@]}"
            for k in "${!PROXIES[@]}"; do
                IFS=: read -r name pid http tcp <<<"${PROXIES[$k]}"
                report "$round" "$sc" "$name" "${befores[$k]}" "$(cpu_ticks "$pid")" \
                    "$(cat "$WORK/wrk$k.out")"
            done
            continue
        fi
        for p in "${PROXIES[@]}"; do
            IFS=: read -r name pid http tcp <<<"$p"
            target "$sc" "$http" "$tcp"
            before=$(cpu_ticks "$pid")
            out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"$DUR" "${hdr[@]}" "$url")
            report "$round" "$sc" "$name" "$before" "$(cpu_ticks "$pid")" "$out"
        done
    done
done
