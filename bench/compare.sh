#!/usr/bin/env bash
# Runs one fan-out workload against the chatroom server, NATS and NATS with TLS, on this
# machine, with the same parameters and the same measuring code (chatroom-bench), and prints
# one table with the ratios chatroom / nats and chatroom / nats-tls.
#
# Everything runs on loopback. Installs nats-server (Debian package) if it is missing.
# Parameters (environment variables, defaults in brackets):
#   MODE       search: the highest rate with p99 < 200 ms and >= 95 % delivered in time
#              fanout: one run at RATE                                               [search]
#   CLIENTS [100]  ROOMS [1]  SENDERS [4]  RATE [50] (start rate for search)  SIZE [100]
#   DURATION [5] seconds per run or step   DRAIN [2]   FACTOR [2]   MAX_STEPS [8]   REFINE [1]
#   LATENCY [1]    also compare light-load latency (4 clients, 20 msg/s, DURATION s)
#   RUN_TIMEOUT [300] seconds: hard bound on each bench run
#   NATS_PORT [14222]  NATS_TLS_PORT [14223]
#   OUT [a new temporary directory]: where the JSON reports are kept
# With the defaults the whole comparison takes about 3 to 5 minutes (after the build).
set -euo pipefail

MODE=${MODE:-search}
CLIENTS=${CLIENTS:-100}
ROOMS=${ROOMS:-1}
SENDERS=${SENDERS:-4}
RATE=${RATE:-50}
SIZE=${SIZE:-100}
DURATION=${DURATION:-5}
DRAIN=${DRAIN:-2}
FACTOR=${FACTOR:-2}
MAX_STEPS=${MAX_STEPS:-8}
REFINE=${REFINE:-1}
LATENCY=${LATENCY:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
NATS_PORT=${NATS_PORT:-14222}
NATS_TLS_PORT=${NATS_TLS_PORT:-14223}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
OUT=${OUT:-$(mktemp -d -t chatroom-compare.XXXXXX)}
mkdir -p "$OUT"
say() { echo "compare: $*" >&2; }

say "building (release)"
cargo build --release --quiet -p chatroom-server -p chatroom-bench
bench=$root/target/release/chatroom-bench

if ! command -v nats-server >/dev/null; then
    say "installing nats-server (Debian package)"
    sudo_cmd=""
    if [ "$(id -u)" != 0 ]; then sudo_cmd=sudo; fi
    if ! $sudo_cmd apt-get install -y -q nats-server >/dev/null 2>&1; then
        $sudo_cmd apt-get update -q >/dev/null
        $sudo_cmd apt-get install -y -q nats-server >/dev/null
    fi
fi
say "$(nats-server --version)"

# A certificate for NATS with TLS, of the same kind as the chatroom server's development
# certificate (ECDSA P-256, self-signed, for localhost and 127.0.0.1).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -keyout "$OUT/nats-key.pem" -out "$OUT/nats-cert.pem" 2>/dev/null

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    say "nothing listens on 127.0.0.1:$1"; return 1
}

nats-server -a 127.0.0.1 -p "$NATS_PORT" >"$OUT/nats.log" 2>&1 &
nats_pid=$!; pids+=("$nats_pid")
nats-server -a 127.0.0.1 -p "$NATS_TLS_PORT" --tls --tlscert "$OUT/nats-cert.pem" \
    --tlskey "$OUT/nats-key.pem" >"$OUT/nats-tls.log" 2>&1 &
nats_tls_pid=$!; pids+=("$nats_tls_pid")
wait_port "$NATS_PORT"
wait_port "$NATS_TLS_PORT"

load=(--clients "$CLIENTS" --rooms "$ROOMS" --senders "$SENDERS" --rate "$RATE" --size "$SIZE"
      --duration "$DURATION" --drain "$DRAIN")
if [ "$MODE" = search ]; then
    load+=(--factor "$FACTOR" --max-steps "$MAX_STEPS" --refine "$REFINE")
fi
run() { # NAME MODE ARGS...: one bench run, its JSON report kept in $OUT/NAME.json
    local name=$1; shift
    say "$name: chatroom-bench $*"
    timeout "$RUN_TIMEOUT" "$bench" "$@" --json >"$OUT/$name.json"
}
run chatroom "$MODE" "${load[@]}"
run nats "$MODE" "${load[@]}" --target "nats://127.0.0.1:$NATS_PORT" --server-pid "$nats_pid"
run nats-tls "$MODE" "${load[@]}" --target "tls://127.0.0.1:$NATS_TLS_PORT" \
    --nats-ca "$OUT/nats-cert.pem" --server-pid "$nats_tls_pid"

echo
echo "fan-out ($MODE): $CLIENTS clients, $ROOMS room(s), $SENDERS senders, $SIZE-byte messages," \
     "${DURATION}s per run; commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
"$bench" compare chatroom="$OUT/chatroom.json" nats="$OUT/nats.json" nats-tls="$OUT/nats-tls.json"

if [ "$LATENCY" = 1 ]; then
    light=(--clients 4 --senders 2 --rate 20 --duration "$DURATION" --drain "$DRAIN")
    run latency-chatroom latency "${light[@]}"
    run latency-nats latency "${light[@]}" --target "nats://127.0.0.1:$NATS_PORT" \
        --server-pid "$nats_pid"
    run latency-nats-tls latency "${light[@]}" --target "tls://127.0.0.1:$NATS_TLS_PORT" \
        --nats-ca "$OUT/nats-cert.pem" --server-pid "$nats_tls_pid"
    echo
    echo "light load: 4 clients in one room, 2 senders, 20 msg/s, ${DURATION}s"
    "$bench" compare chatroom="$OUT/latency-chatroom.json" nats="$OUT/latency-nats.json" \
        nats-tls="$OUT/latency-nats-tls.json"
fi
echo
echo "reports: $OUT"
