#!/usr/bin/env bash
# The promptstore performance benchmarks, in one command (see BENCHMARKS.md).
#
#   bench/run.sh            full run (about 5 minutes after the release build)
#   bench/run.sh --quick    shorter runs, for a smoke test of the benchmarks themselves
#   bench/run.sh --keep     keep the work directory (data dirs, logs, raw wrk output)
#
# Every figure is reported next to a baseline measured in the same run (the machine is
# shared and noisy, so only ratios travel between runs). Results are printed and written to
# bench/results/latest.md. All traffic goes to 127.0.0.1; every load is bounded in time.
# Needs: cargo, wrk (installed with apt-get when missing), taskset, curl, 2+ cores.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

QUICK=0
KEEP=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$arg' (use --quick, --keep)" >&2; exit 2 ;;
  esac
done

if [ "$QUICK" = 1 ]; then
  DURATION=3; ROUNDS=1; COLD_RUNS=5; CACHE_ITERS=2000000
else
  DURATION=10; ROUNDS=3; COLD_RUNS=10; CACHE_ITERS=10000000
fi
SMALL_PROMPTS=1000
LARGE_PROMPTS=10000
VERSIONS=10
SERVER_CPU=0
CLIENT_CPU=1

say() { printf '\n== %s\n' "$*"; }
die() { echo "bench/run.sh: $*" >&2; exit 1; }

# ---- tools -------------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  echo "wrk is not installed: installing it from Debian (apt-get install -y wrk)"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null \
    || die "could not install wrk; install it (apt-get install wrk) and rerun"
fi
for tool in taskset curl cargo awk; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is needed but not installed"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 cores: the server and the load generator are pinned to one each"
CLK_TCK=$(getconf CLK_TCK)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- build -------------------------------------------------------------------------------
say "building (release): cargo build --release -p promptstore -p promptstore-bench"
cargo build --release -p promptstore -p promptstore-bench
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"

# ---- work directory and process cleanup --------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/promptstore-bench.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$KEEP" = 1 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Start a server pinned to the server core; sets STARTED_PID and STARTED_PORT.
# $1 = log file, rest = command. The server prints its URL; port 0 lets it choose.
start_pinned() {
  local log=$1; shift
  # Created here, not by the background job's redirection, which may not have run yet when
  # the loop below first reads it (and a failed read ends the script under `set -e`).
  : >"$log"
  taskset -c "$SERVER_CPU" "$@" >"$log" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  local i
  for i in $(seq 1 300); do
    STARTED_PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$log" | head -n1)
    [ -n "$STARTED_PORT" ] && return 0
    kill -0 "$STARTED_PID" 2>/dev/null || { cat "$log" >&2; die "server exited at start (log above)"; }
    sleep 0.1
  done
  die "server did not print its address within 30 s (log: $log)"
}

stop_server() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# median of the numbers on stdin
median() {
  sort -g | awk '{a[NR]=$1} END { if (NR == 0) { print "nan" } else if (NR % 2) { print a[(NR+1)/2] } else { print (a[NR/2] + a[NR/2+1]) / 2 } }'
}

# ---- seed ----------------------------------------------------------------------------------
say "seeding $SMALL_PROMPTS prompts x $VERSIONS versions"
"$BIN/bench_seed" --data-dir "$WORK/small" --prompts "$SMALL_PROMPTS" --versions "$VERSIONS"
say "seeding $LARGE_PROMPTS prompts x $VERSIONS versions"
"$BIN/bench_seed" --data-dir "$WORK/large" --prompts "$LARGE_PROMPTS" --versions "$VERSIONS"
BODY_FILE="$WORK/small/bench-render-body.json"
ADMIN_KEY=$(cat "$WORK/small/bench-admin.key")

# ---- 1. warm render over HTTP ------------------------------------------------------------
say "1. warm render over HTTP (server on core $SERVER_CPU, wrk -t1 on core $CLIENT_CPU, ${DURATION}s runs, $ROUNDS rounds)"
start_pinned "$WORK/promptstore-http.log" "$BIN/promptstore" serve --data-dir "$WORK/small" --bind 127.0.0.1 --port 0
PS_PID=$STARTED_PID; PS_PORT=$STARTED_PORT
PS_URL="http://127.0.0.1:$PS_PORT"

# A runtime key through the API, as an operator would create one for an agent.
KEY_ANSWER=$(curl -sS -X POST -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
  -d '{"name":"wrk-runtime","role":"runtime"}' "$PS_URL/api/v1/keys")
RUNTIME_KEY=$(printf '%s' "$KEY_ANSWER" | sed -n 's/.*"secret":"\(ps_[a-z0-9_]*\)".*/\1/p')
[ -n "$RUNTIME_KEY" ] || die "POST /api/v1/keys did not return a secret: $KEY_ANSWER"

STATUS=$(curl -sS -o "$WORK/render-answer.json" -w '%{http_code}' -X POST \
  -H "Authorization: Bearer $RUNTIME_KEY" -H 'Content-Type: application/json' \
  --data-binary "@$BODY_FILE" "$PS_URL/api/v1/render")
[ "$STATUS" = 200 ] || die "render answered $STATUS: $(cat "$WORK/render-answer.json")"
RENDER_BYTES=$(wc -c <"$WORK/render-answer.json")
echo "render answer: 200, $RENDER_BYTES bytes of JSON; the baseline sends the same size"

start_pinned "$WORK/bare-http.log" "$BIN/bare_axum" 0 "$RENDER_BYTES"
BARE_PID=$STARTED_PID; BARE_PORT=$STARTED_PORT

INVALID=0
mkdir -p "$WORK/samples"
# run_wrk NAME CONNS PORT PID ROUND [UNIQUE_VAR]: one wrk run; appends "rps p50_us p99_us cpu%"
# to samples. With UNIQUE_VAR every request carries another value of that variable, so no
# two requests are alike (the server's render answer cache cannot answer any of them).
run_wrk() {
  local name=$1 conns=$2 port=$3 pid=$4 round=$5 unique=${6:-}
  local out="$WORK/wrk-$name-c$conns-$round.txt"
  local before after line
  before=$(cpu_ticks "$pid")
  PS_KEY="$RUNTIME_KEY" PS_BODY_FILE="$BODY_FILE" PS_UNIQUE_VAR="$unique" taskset -c "$CLIENT_CPU" \
    wrk -t1 -c"$conns" -d"${DURATION}s" --latency -s "$ROOT/bench/render.lua" \
    "http://127.0.0.1:$port/api/v1/render" >"$out" 2>&1 || true
  after=$(cpu_ticks "$pid")
  line=$(grep '^BENCH ' "$out" | head -n1) || { cat "$out" >&2; die "wrk printed no result ($out)"; }
  get() { printf '%s\n' "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  local rps p50 p99 non200 socket cpu
  rps=$(get rps); p50=$(get p50_us); p99=$(get p99_us); non200=$(get non200); socket=$(get socket_errors)
  cpu=$(awk -v a="$before" -v b="$after" -v hz="$CLK_TCK" -v d="$DURATION" 'BEGIN { printf "%.0f", (b - a) * 100 / (hz * d) }')
  if [ "$non200" != 0 ] || [ "$socket" != 0 ]; then
    INVALID=1
    echo "INVALID RUN: $name -c$conns round $round: $non200 non-200 answers, $socket socket errors ($out)"
    grep '^BENCH_FIRST_BAD' "$out" || true
  fi
  printf '  %-11s -c%-2s round %s: %9.0f req/s  p50 %6.3f ms  p99 %6.3f ms  server CPU %s%%\n' \
    "$name" "$conns" "$round" "$rps" "$(awk -v x="$p50" 'BEGIN{print x/1000}')" "$(awk -v x="$p99" 'BEGIN{print x/1000}')" "$cpu"
  echo "$rps $p50 $p99 $cpu" >>"$WORK/samples/$name-c$conns"
}

# Warm-up: first connections, lazy template compilation, page faults; not reported.
WARM=$DURATION; DURATION=2
run_wrk bare 64 "$BARE_PORT" "$BARE_PID" warmup >/dev/null
run_wrk promptstore 64 "$PS_PORT" "$PS_PID" warmup >/dev/null
run_wrk promptstore-unique 64 "$PS_PORT" "$PS_PID" warmup customer_name >/dev/null
rm -f "$WORK/samples/"*
DURATION=$WARM

for round in $(seq 1 "$ROUNDS"); do
  run_wrk bare 64 "$BARE_PORT" "$BARE_PID" "$round"
  run_wrk promptstore 64 "$PS_PORT" "$PS_PID" "$round"
  run_wrk bare 1 "$BARE_PORT" "$BARE_PID" "$round"
  run_wrk promptstore 1 "$PS_PORT" "$PS_PID" "$round"
  run_wrk bare-unique 64 "$BARE_PORT" "$BARE_PID" "$round" customer_name
  run_wrk promptstore-unique 64 "$PS_PORT" "$PS_PID" "$round" customer_name
done

col() { awk -v c="$2" '{print $c}' "$WORK/samples/$1" | median; }
B64_RPS=$(col bare-c64 1); B64_P99=$(col bare-c64 3); B64_CPU=$(col bare-c64 4)
P64_RPS=$(col promptstore-c64 1); P64_P99=$(col promptstore-c64 3); P64_CPU=$(col promptstore-c64 4)
B1_P50=$(col bare-c1 2); B1_RPS=$(col bare-c1 1)
P1_P50=$(col promptstore-c1 2); P1_RPS=$(col promptstore-c1 1)
BU_RPS=$(col bare-unique-c64 1); BU_P99=$(col bare-unique-c64 3); BU_CPU=$(col bare-unique-c64 4)
PU_RPS=$(col promptstore-unique-c64 1); PU_P99=$(col promptstore-unique-c64 3); PU_CPU=$(col promptstore-unique-c64 4)

# ---- 2. client cache -----------------------------------------------------------------------
say "2. client-crate cached resolve ($CACHE_ITERS calls per variant, on core $CLIENT_CPU)"
taskset -c "$CLIENT_CPU" "$BIN/bench_client_cache" --url "$PS_URL" --key "$RUNTIME_KEY" \
  --iters "$CACHE_ITERS" | tee "$WORK/cache.txt"
result() { sed -n "s/^RESULT $1 //p" "$2" | awk -v f="${3:-1}" '{print $f}'; }
CACHE_BASE=$(result cache_baseline_ns "$WORK/cache.txt")
CACHE_GET=$(result cache_get_ns "$WORK/cache.txt")
CACHE_GET_CACHED=$(result cache_get_cached_ns "$WORK/cache.txt")

stop_server "$PS_PID"
stop_server "$BARE_PID"

# ---- 3. cold start -------------------------------------------------------------------------
say "3. cold start to first served render ($COLD_RUNS runs each, alternating)"
"$BIN/bench_cold_start" --promptstore "$BIN/promptstore" --bare "$BIN/bare_axum" \
  --data-dir "$WORK/small" --work "$WORK" --runs "$COLD_RUNS" --body-bytes "$RENDER_BYTES" \
  --tag cold | tee "$WORK/cold.txt"
COLD_BARE=$(result cold_bare_ms "$WORK/cold.txt"); COLD_PS=$(result cold_promptstore_ms "$WORK/cold.txt")
COLD_PS_MAX=$(result cold_promptstore_ms "$WORK/cold.txt" 3)

say "5. cold start with $LARGE_PROMPTS prompts"
"$BIN/bench_cold_start" --promptstore "$BIN/promptstore" --bare "$BIN/bare_axum" \
  --data-dir "$WORK/large" --work "$WORK" --runs "$COLD_RUNS" --body-bytes "$RENDER_BYTES" \
  --tag cold10k | tee "$WORK/cold10k.txt"
COLD10K_BARE=$(result cold10k_bare_ms "$WORK/cold10k.txt"); COLD10K_PS=$(result cold10k_promptstore_ms "$WORK/cold10k.txt")

# ---- 4. memory -----------------------------------------------------------------------------
say "4. memory with $LARGE_PROMPTS prompts x $VERSIONS versions, every prompt touched"
"$BIN/bench_footprint" --promptstore "$BIN/promptstore" --bare "$BIN/bare_axum" \
  --data-dir "$WORK/large" --work "$WORK" --prompts "$LARGE_PROMPTS" --body-bytes "$RENDER_BYTES" \
  | tee "$WORK/footprint.txt"
RSS_BARE=$(result rss_bare_kib "$WORK/footprint.txt")
RSS_START=$(result rss_started_kib "$WORK/footprint.txt")
RSS_RENDERED=$(result rss_rendered_kib "$WORK/footprint.txt")
RSS_TOUCH=$(result rss_touched_kib "$WORK/footprint.txt"); HWM_TOUCH=$(result rss_touched_kib "$WORK/footprint.txt" 2)

# ---- report --------------------------------------------------------------------------------
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
verdict() { # verdict "<awk condition>" -> met / NOT met
  if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "**NOT met**"; fi
}
# Throughput ratio: per round (baseline and promptstore measured back to back), then the
# median, so a burst of load from another process skews one round rather than the result.
RATIO64=$(paste -d' ' "$WORK/samples/bare-c64" "$WORK/samples/promptstore-c64" \
  | awk '{ print 100 * $5 / $1 }' | median)
RATIO64=$(calc '%.0f' "$RATIO64")
RATIOU=$(paste -d' ' "$WORK/samples/bare-unique-c64" "$WORK/samples/promptstore-unique-c64" \
  | awk '{ print 100 * $5 / $1 }' | median)
RATIOU=$(calc '%.0f' "$RATIOU")
MB() { calc '%.1f' "($1) * 1024 / 1e6"; }
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "# promptstore benchmark results"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
  echo "- toolchain: $(rustc --version), release profile; $(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2)"
  echo "- load average (1/5/15 min) at start: $LOAD_START, at end: $LOAD_END (other work on the machine shows here)"
  echo "- command: \`bench/run.sh$([ "$QUICK" = 1 ] && echo ' --quick')\` (${DURATION}s wrk runs, $ROUNDS round(s), medians)"
  if [ "$INVALID" = 1 ]; then
    echo
    echo "**INVALID: at least one wrk run had non-200 answers or socket errors; see the log above.**"
  fi
  echo
  echo "| # | what | baseline (same run) | promptstore | ratio | target | verdict |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  echo "| 1a | warm render, the same request repeated (render answer cache), 64 connections, throughput | bare axum $(calc '%.0f' "$B64_RPS") req/s | $(calc '%.0f' "$P64_RPS") req/s | **${RATIO64}%** of bare (median of per-round ratios) | ≥ 70% | $(verdict "$RATIO64 >= 70") |"
  echo "| 1b | warm render, 64 connections, p99 latency | bare axum $(calc '%.3f' "$B64_P99/1000") ms | $(calc '%.3f' "$P64_P99/1000") ms | $(calc '%.1f' "$P64_P99/$B64_P99")× | < 2 ms | $(verdict "$P64_P99 < 2000") |"
  echo "| 1c | keep-alive, 1 connection, p50 latency | bare axum $(calc '%.3f' "$B1_P50/1000") ms | $(calc '%.3f' "$P1_P50/1000") ms | $(calc '%.2f' "$P1_P50/$B1_P50")× | < 0.2 ms | $(verdict "$P1_P50 < 200") |"
  echo "| 1d | render with distinct variables on every request (never from the answer cache), 64 connections, throughput | bare axum $(calc '%.0f' "$BU_RPS") req/s (same script) | $(calc '%.0f' "$PU_RPS") req/s | **${RATIOU}%** of bare | (≥ 70%) | $(verdict "$RATIOU >= 70") |"
  echo "| 1e | the same, p99 latency | bare axum $(calc '%.3f' "$BU_P99/1000") ms | $(calc '%.3f' "$PU_P99/1000") ms | $(calc '%.1f' "$PU_P99/$BU_P99")× | (< 2 ms) | $(verdict "$PU_P99 < 2000") |"
  echo "| 2 | client crate cached resolve (\`CachedClient::get\`) | RwLock<HashMap> $CACHE_BASE ns | $CACHE_GET ns (\`get_cached\` $CACHE_GET_CACHED ns) | $(calc '%.1f' "$CACHE_GET/$CACHE_BASE")× | < 1 µs | $(verdict "$CACHE_GET < 1000") |"
  echo "| 3 | cold start to first render, $SMALL_PROMPTS prompts | bare axum $COLD_BARE ms | $COLD_PS ms (max $COLD_PS_MAX) | +$(calc '%.1f' "$COLD_PS - $COLD_BARE") ms | < 200 ms | $(verdict "$COLD_PS < 200") |"
  echo "| 4 | RSS, $LARGE_PROMPTS prompts × $VERSIONS versions, all touched | bare axum $(MB "$RSS_BARE") MB | $(MB "$RSS_TOUCH") MB (peak $(MB "$HWM_TOUCH") MB; $(MB "$RSS_START") MB after start, $(MB "$RSS_RENDERED") MB after rendering each prompt once) | +$(MB "$RSS_TOUCH - $RSS_BARE") MB | < 200 MB | $(verdict "$RSS_TOUCH * 1024 < 200e6") |"
  echo "| 5 | cold start to first render, $LARGE_PROMPTS prompts | bare axum $COLD10K_BARE ms | $COLD10K_PS ms | +$(calc '%.1f' "$COLD10K_PS - $COLD10K_BARE") ms | (< 200 ms) | $(verdict "$COLD10K_PS < 200") |"
  echo
  echo "Server CPU during the 64-connection runs (median): bare axum ${B64_CPU}%, promptstore ${P64_CPU}% of its one core;"
  echo "server CPU time per request: bare axum $(calc '%.1f' "$B64_CPU * 1e4 / $B64_RPS") µs, promptstore $(calc '%.1f' "$P64_CPU * 1e4 / $P64_RPS") µs"
  echo "(a measure that other load on the machine disturbs less than throughput); with distinct variables on every"
  echo "request: bare axum $(calc '%.1f' "$BU_CPU * 1e4 / $BU_RPS") µs, promptstore $(calc '%.1f' "$PU_CPU * 1e4 / $PU_RPS") µs."
  echo "Single-connection throughput (median): bare axum $(calc '%.0f' "$B1_RPS") req/s, promptstore $(calc '%.0f' "$P1_RPS") req/s."
  echo
  echo "Raw wrk samples (req/s, p50 µs, p99 µs, server CPU %), in run order:"
  echo
  echo '```'
  for s in bare-c64 promptstore-c64 bare-c1 promptstore-c1 bare-unique-c64 promptstore-unique-c64; do
    printf '%-16s %s\n' "$s" "$(tr '\n' ';' <"$WORK/samples/$s")"
  done
  echo '```'
} >"$WORK/latest.md"

mkdir -p "$ROOT/bench/results"
cp "$WORK/latest.md" "$ROOT/bench/results/latest.md"
say "results (also in bench/results/latest.md)"
cat "$WORK/latest.md"
if [ "$INVALID" = 1 ]; then
  echo "bench/run.sh: INVALID run: some wrk requests failed (see above)" >&2
  exit 1
fi
