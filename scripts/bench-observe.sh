#!/usr/bin/env bash
# Cost of observability on the request path (issue 7, point 5): the same
# percore binary in three configurations, measured in one run, alternating:
#   plain   no access log, no stats scrape
#   log     httplog line per request to a file
#   scrape  httplog to a file + the stats endpoint scraped every second
#           (Prometheus /metrics and the JSON page, which collect from every
#           core over the glommio channel mesh)
# Layout as scripts/bench-http.sh: nginx (1 worker) and wrk on CPU 0, the
# proxy alone on CPU 1. Reports req/s and proxy CPU per request
# ((utime+stime) delta from /proc/<pid>/stat / requests completed).
#
#   scripts/bench-observe.sh [percore-binary]
# Environment: ROUNDS (3), DUR (8s), CONNS (64).
set -euo pipefail
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-8s}
CONNS=${CONNS:-64}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/target/release/percore}
WORK=$(mktemp -d /tmp/percore-obs.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

BACKEND_PORT=19280
mkdir -p "$WORK/www" "$WORK/nginx"
printf 'hello, percore\n' > "$WORK/www/index.html"
cat > "$WORK/nginx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log crit;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    server { listen 127.0.0.1:$BACKEND_PORT backlog=4096; root $WORK/www; location / { } }
}
NGX
taskset -c 0 nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
PIDS+=($!)

declare -A PID PORT
port=19300
for variant in plain log scrape; do
    http=$port; stats=$((port + 1)); port=$((port + 10))
    global_log=""; fe_log=""; stats_section=""
    if [ "$variant" != plain ]; then
        global_log="log = [\"file:$WORK/$variant.log\"]"
        fe_log=$'log = true\nlog-format = "httplog"'
    fi
    if [ "$variant" = scrape ]; then
        stats_section=$'[stats]\nbind = "127.0.0.1:'"$stats"$'"\nuri = "/stats"'
    fi
    cat > "$WORK/$variant.toml" <<CFG
[global]
threads = [1]
maxconn = 4000
$global_log

[defaults]
mode = "http"
timeout = { connect = "5s", client = "30s", server = "30s", http-request = "10s", http-keep-alive = "10s" }

[[frontend]]
name = "web"
bind = ["127.0.0.1:$http"]
default_backend = "app"
$fe_log

[[backend]]
name = "app"
servers = [ { name = "n1", addr = "127.0.0.1:$BACKEND_PORT" } ]

$stats_section
CFG
    taskset -c 1 "$BIN" -c "$WORK/$variant.toml" 2>"$WORK/$variant.err" &
    PIDS+=($!)
    PID[$variant]=$!
    PORT[$variant]=$http
done
sleep 1
scraper() {
    while true; do
        curl -s -o /dev/null "http://127.0.0.1:19321/metrics" || true
        curl -s -o /dev/null "http://127.0.0.1:19321/stats;json" || true
        sleep 1
    done
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)
echo "# $(date -u +%FT%TZ) $BIN; wrk -t1 -c$CONNS -d$DUR keep-alive; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %-7s %10s %10s\n' round variant req/s us/req
for round in $(seq 1 "$ROUNDS"); do
    for variant in plain log scrape; do
        spid=""
        if [ "$variant" = scrape ]; then taskset -c 0 bash -c "$(declare -f scraper); scraper" & spid=$!; fi
        before=$(cpu_ticks "${PID[$variant]}")
        out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"$DUR" "http://127.0.0.1:${PORT[$variant]}/index.html")
        after=$(cpu_ticks "${PID[$variant]}")
        [ -n "$spid" ] && { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true; }
        reqs=$(echo "$out" | awk '/requests in/ {print $1}')
        rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
        us=$(awk -v t=$((after - before)) -v k="$TCK" -v n="$reqs" 'BEGIN { printf "%.1f", t / k / n * 1e6 }')
        printf '%-6s %-7s %10s %10s\n' "$round" "$variant" "$rps" "$us"
    done
done
for variant in log scrape; do
    echo "# $variant: $(wc -l < "$WORK/$variant.log") log lines written"
done
