#!/usr/bin/env bash
# Instructions (and allocations) per render request, counted by callgrind on the server.
#
#   bench/callgrind.sh [--unique | --repeat] [--bare] [--keep]
#
# Unlike wrk's throughput, an instruction count does not depend on the machine's load, so
# it compares two builds reliably. The server runs under `valgrind --tool=callgrind`
# (unpinned: valgrind runs one thread at a time); wrk (8 connections, bench/render.lua)
# warms it up for 3 s, then the counters are zeroed, wrk runs 8 s more and the counters are
# dumped. Printed: requests, userland instructions per request, malloc/realloc calls per
# request, and the top functions (inclusive) for a look at where the instructions go.
# `--unique` (the default) sends distinct variables on every request, so every request
# renders (row 1d of BENCHMARKS.md); `--repeat` sends the same request (answer cache hits);
# `--bare` measures the bare axum baseline (a fixed body of the render answer's size) instead.
# Notes: valgrind's CPU has no SHA-NI, so SHA-256 (the API key's digest) runs in software
# here and counts ~9,000 instructions that the real CPU does in a few hundred.
# Needs: the release build (CARGO_TARGET_DIR honoured), valgrind, wrk, curl.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
UNIQUE=customer_name
KEEP=0
BARE=0
for arg in "$@"; do
  case "$arg" in
    --unique) UNIQUE=customer_name ;;
    --repeat) UNIQUE="" ;;
    --keep) KEEP=1 ;;
    --bare) BARE=1 ;;
    *) echo "bench/callgrind.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
# PROMPTSTORE=path measures another build of the server (e.g. a saved baseline).
SERVER="${PROMPTSTORE:-$BIN/promptstore}"
for tool in valgrind callgrind_control callgrind_annotate wrk curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench/callgrind.sh: '$tool' is needed" >&2; exit 1; }
done
[ -x "$BIN/promptstore" ] && [ -x "$BIN/bench_seed" ] \
  || { echo "bench/callgrind.sh: build first: cargo build --release -p promptstore -p promptstore-bench" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/promptstore-callgrind.XXXXXX")
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  if [ "$KEEP" = 1 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

"$BIN/bench_seed" --data-dir "$WORK/data" --prompts 10 --versions 2 >/dev/null
if [ "$BARE" = 1 ]; then
  # The size of the real answer to the benchmark request (1,279 bytes), as bench/run.sh does.
  COMMAND=("$BIN/bare_axum" 0 1279)
else
  COMMAND=("$SERVER" serve --data-dir "$WORK/data" --bind 127.0.0.1 --port 0)
fi
# Created before the server starts: the background job's redirection may not have run yet
# when the loop below first reads the log.
: >"$WORK/server.log"
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
  "${COMMAND[@]}" >"$WORK/server.log" 2>&1 &
PID=$!
PORT=""
for _ in $(seq 1 600); do
  PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$WORK/server.log" | head -n1)
  [ -n "$PORT" ] && break
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$PORT" ] || { echo "bench/callgrind.sh: the server did not start" >&2; exit 1; }

run_wrk() { # seconds output
  PS_KEY=$(cat "$WORK/data/bench-runtime.key") PS_BODY_FILE="$WORK/data/bench-render-body.json" \
    PS_UNIQUE_VAR="$UNIQUE" wrk -t1 -c8 -d"$1s" -s "$ROOT/bench/render.lua" \
    "http://127.0.0.1:$PORT/api/v1/render" >"$2" 2>&1
}
run_wrk 3 "$WORK/warmup.txt"
callgrind_control -z "$PID" >/dev/null
run_wrk 8 "$WORK/wrk.txt"
callgrind_control -d "$PID" >/dev/null
sleep 1

grep -q 'non200=0 socket_errors=0' "$WORK/wrk.txt" \
  || { cat "$WORK/wrk.txt" >&2; echo "bench/callgrind.sh: failed requests" >&2; exit 1; }
REQUESTS=$(sed -n 's/^BENCH requests=\([0-9]*\).*/\1/p' "$WORK/wrk.txt")
# The dump after zeroing is the last one written (callgrind.out.N with the highest N).
DUMP=$(ls -1v "$WORK"/callgrind.out.* | tail -n1)
TOTAL=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$DUMP" | head -n1)
[ -n "$TOTAL" ] || TOTAL=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$DUMP" | head -n1)
# Calls to malloc/realloc/calloc: the `calls=` lines that follow a `cfn=` naming one.
ALLOCS=$(awk '
  /^fn=\(/ { }
  /^cfn=/ {
    name = $0; sub(/^cfn=/, "", name)
    if (match(name, /^\([0-9]+\)/)) {
      id = substr(name, RSTART, RLENGTH); rest = substr(name, RLENGTH + 1); sub(/^ /, "", rest)
      if (rest != "") names[id] = rest; else rest = names[id]
    } else { rest = name }
    alloc = (rest == "malloc" || rest == "realloc" || rest == "calloc")
    next
  }
  /^fn=|^fl=|^fi=|^fe=/ {
    n = $0
    if (n ~ /^fn=/) { sub(/^fn=/, "", n); if (match(n, /^\([0-9]+\)/)) { id = substr(n, RSTART, RLENGTH); r = substr(n, RLENGTH + 1); sub(/^ /, "", r); if (r != "") names[id] = r } }
    alloc = 0; next
  }
  /^calls=/ { if (alloc) { split($0, a, /[= ]/); total += a[2] } alloc = 0 }
  END { print total + 0 }' "$DUMP")
echo "requests: $REQUESTS"
awk -v t="$TOTAL" -v r="$REQUESTS" -v m="$ALLOCS" \
  'BEGIN { printf "instructions per request: %.0f\nmalloc/realloc/calloc calls per request: %.1f\n", t / r, m / r }'
callgrind_annotate --inclusive=yes "$DUMP" 2>/dev/null | sed -n '1,60p' >"$WORK/top.txt"
[ "${CG_TOP:-1}" = 0 ] || sed -n '/Ir/,$p' "$WORK/top.txt" | head -n 45
