#!/usr/bin/env bash
# TLS benchmark: full and resumed handshakes/s (openssl s_time) and HTTPS
# keep-alive requests/s (wrk), percore vs HAProxy, each alone on CPU 1 with
# one thread, same certificate and cipher; clients and the origin on CPU 0.
# Usage: loadtest/tls/run.sh [seconds]   (needs a release build of percore)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
BIN=$(realpath "${PERCORE:-target/release/percore}")
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout eckey.pem \
  -out eccert.pem -days 2 -subj "/CN=bench.test" 2>/dev/null
cat eccert.pem eckey.pem > ecdsa.pem
openssl req -x509 -newkey rsa:2048 -nodes -keyout rsakey.pem \
  -out rsacert.pem -days 2 -subj "/CN=bench.test" 2>/dev/null
cat rsacert.pem rsakey.pem > rsa.pem

# Origin: HAProxy answering 200 itself, on CPU 0.
cat > origin.cfg <<CFG
global
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend origin
    bind 127.0.0.1:19080
    http-request return status 200 content-type text/plain string ok
CFG
taskset -c 0 haproxy -f origin.cfg -q &

TLS13=TLS_AES_128_GCM_SHA256
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_one() { # name pid port
  local name=$1 pid=$2 port=$3 t0 t1 out
  sleep 1
  for mode in -new -reuse; do
    t0=$(cpu_ticks "$pid")
    out=$(taskset -c 0 openssl s_time -connect "127.0.0.1:$port" $mode -time "$SECS" \
          -ciphersuites "$TLS13" 2>&1 | grep "connections in" | tail -1)
    t1=$(cpu_ticks "$pid")
    echo "$name s_time $mode: $out; proxy CPU $(( (t1 - t0) * 10 )) ms"
  done
  t0=$(cpu_ticks "$pid")
  taskset -c 0 wrk -t1 -c32 -d"${SECS}s" "https://127.0.0.1:$port/" | grep -E "Requests/sec|Latency"
  t1=$(cpu_ticks "$pid")
  echo "$name wrk keep-alive: proxy CPU $(( (t1 - t0) * 10 )) ms"
}

for cert in ecdsa rsa; do
  cat > percore.toml <<TOML
[global]
threads = [1]
maxconn = 4000
[defaults]
mode = "http"
timeout = { connect = "5s", client = "30s", server = "30s" }
[[frontend]]
name = "tls"
bind = [{ addr = "127.0.0.1:19443", ssl = true, crt = "$cert.pem", ciphersuites = "$TLS13" }]
default_backend = "origin"
[[backend]]
name = "origin"
servers = [{ name = "o", addr = "127.0.0.1:19080" }]
TOML
  "$BIN" -c percore.toml 2>percore.err &
  P=$!
  run_one "percore/$cert" "$P" 19443
  kill "$P"; wait "$P" 2>/dev/null || true

  cat > haproxy.cfg <<CFG
global
    nbthread 1
    cpu-map 1/1 1
    maxconn 4000
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend tls
    bind 127.0.0.1:19444 ssl crt $WORK/$cert.pem ciphersuites $TLS13
    default_backend origin
backend origin
    http-reuse always
    server o 127.0.0.1:19080
CFG
  haproxy -f haproxy.cfg -q &
  H=$!
  run_one "haproxy/$cert" "$H" 19444
  kill "$H"; wait "$H" 2>/dev/null || true
done
