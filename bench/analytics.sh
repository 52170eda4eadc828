#!/usr/bin/env bash
# The analytics and A/B-testing benchmarks (issues 3 and 4), in one command (BENCHMARKS.md,
# section "Analytics and A/B tests").
#
#   bench/analytics.sh            full run: 10 M events for the queries, 10 M for the experiment
#   bench/analytics.sh --quick    1 M events each, shorter rounds: a smoke test of the benchmarks
#   bench/analytics.sh --keep     keep the work directory (data dirs, server logs)
#
# Every figure is reported next to a baseline measured in the same run (the machine is
# shared and noisy). Results are printed and written to bench/results/analytics.md. All
# traffic goes to 127.0.0.1; every load is bounded in time or count; every server started
# is killed at the end (with SIGKILL on purpose: the durability checks read what it left).
# Needs: cargo, taskset, 2+ cores, ~12 GB of free disk for the full run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

QUICK=0
KEEP=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "bench/analytics.sh: unknown argument '$arg' (use --quick, --keep)" >&2; exit 2 ;;
  esac
done

if [ "$QUICK" = 1 ]; then
  EVENTS=1000000; INGEST_SECONDS=5; INGEST_ROUNDS=2; RUNS=11; ASSIGN_ITERS=500000; ASSIGN_ROUNDS=3
else
  EVENTS=10000000; INGEST_SECONDS=10; INGEST_ROUNDS=3; RUNS=21; ASSIGN_ITERS=2000000; ASSIGN_ROUNDS=5
fi
CLIENTS=8
SERVER_CPU=0
# Ingestion measures the whole server's throughput on this machine: its request handling
# runs beside its one writer, so it gets every core (the driver stays on its own, the
# baseline is one thread whatever it gets) and 16 clients keep the writer's queue full.
# The query benchmarks keep the server on one core, for steadier timings.
INGEST_CLIENTS=16
INGEST_SERVER_CPU=none
CLIENT_CPU=1

say() { printf '\n== %s\n' "$*"; }
die() { echo "bench/analytics.sh: $*" >&2; exit 1; }

for tool in taskset cargo awk; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is needed but not installed"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 cores: the server and the load generator are pinned to one each"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

say "building (release): cargo build --release -p promptstore -p promptstore-bench"
cargo build --release -p promptstore -p promptstore-bench
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/promptstore-analytics-bench.XXXXXX")
cleanup() {
  if [ "$KEEP" = 1 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# The drivers run on the client core and start the server pinned to the server core.
drive() { taskset -c "$CLIENT_CPU" "$@"; }

say "1. ingestion over HTTP vs raw SQLite inserts ($INGEST_ROUNDS rounds of ${INGEST_SECONDS}s each, $INGEST_CLIENTS clients, batches of 1,000, server on every core)"
drive "$BIN/bench_ingest_http" --promptstore "$BIN/promptstore" --raw "$BIN/bench_ingest_raw" \
  --work "$WORK/ingest" --seconds "$INGEST_SECONDS" --rounds "$INGEST_ROUNDS" --clients "$INGEST_CLIENTS" \
  --server-cpu "$INGEST_SERVER_CPU" | tee "$WORK/ingest.txt"

say "2. analytics queries over $EVENTS events ingested over HTTP ($RUNS timed runs each)"
drive "$BIN/bench_analytics" --promptstore "$BIN/promptstore" --work "$WORK" --events "$EVENTS" \
  --clients "$CLIENTS" --runs "$RUNS" --server-cpu "$SERVER_CPU" | tee "$WORK/analytics.txt"

say "3a. arm assignment in a warm resolve ($ASSIGN_ROUNDS rounds of $ASSIGN_ITERS calls per variant)"
drive "$BIN/bench_abtest_assign" --work "$WORK" --iters "$ASSIGN_ITERS" --rounds "$ASSIGN_ROUNDS" \
  | tee "$WORK/assign.txt"

say "3b. experiment results over $EVENTS attributed events ($RUNS timed runs)"
drive "$BIN/bench_abtest_results" --promptstore "$BIN/promptstore" --work "$WORK" --events "$EVENTS" \
  --runs "$RUNS" --server-cpu "$SERVER_CPU" | tee "$WORK/abtest.txt"

# ---- report ----------------------------------------------------------------------------
# result KEY FILE [FIELD]: field FIELD (1-based) after "RESULT KEY ".
result() { sed -n "s/^RESULT $1 //p" "$2" | head -n1 | awk -v f="${3:-1}" '{print $f}'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "**NOT met**"; fi; }
MB() { calc '%.1f' "($1) * 1024 / 1e6"; }

RAW=$(result ingest_raw_eps "$WORK/ingest.txt"); HTTP=$(result ingest_http_eps "$WORK/ingest.txt")
HTTP_MIN=$(result ingest_http_eps "$WORK/ingest.txt" 2); HTTP_MAX=$(result ingest_http_eps "$WORK/ingest.txt" 3)
RATIO=$(result ingest_ratio_pct "$WORK/ingest.txt")
B50=$(result ingest_batch_ms "$WORK/ingest.txt"); B99=$(result ingest_batch_ms "$WORK/ingest.txt" 2)
ICPU=$(result ingest_server_cpu_pct "$WORK/ingest.txt")
RAW_US=$(result ingest_cpu_us_per_event "$WORK/ingest.txt"); SRV_US=$(result ingest_cpu_us_per_event "$WORK/ingest.txt" 2)
DRV_US=$(result ingest_cpu_us_per_event "$WORK/ingest.txt" 3)
D_OK=$(result ingest_durable "$WORK/ingest.txt"); D_ROUNDS=$(result ingest_durable "$WORK/ingest.txt" 2)
D_ACK=$(result ingest_durable "$WORK/ingest.txt" 3); D_FOUND=$(result ingest_durable "$WORK/ingest.txt" 4)
D_CELLS=$(result ingest_durable "$WORK/ingest.txt" 5)

SEED_N=$(result analytics_seed "$WORK/analytics.txt"); SEED_S=$(result analytics_seed "$WORK/analytics.txt" 2)
SEED_EPS=$(result analytics_seed "$WORK/analytics.txt" 3)
q() { sed -n "s/^RESULT analytics_ms $1 //p" "$WORK/analytics.txt" | awk -v f="$2" '{print $f}'; }
BASE_MS=$(q baseline_project 1); SUM_MS=$(q summary 1); GRP_MS=$(q summary_grouped 1); TS_MS=$(q timeseries_hourly 1)
SUM_MAX=$(q summary 3); GRP_MAX=$(q summary_grouped 3); TS_MAX=$(q timeseries_hourly 3)
COUNTED=$(result analytics_summary_count "$WORK/analytics.txt")
RSS_PEAK=$(result analytics_rss_kib "$WORK/analytics.txt"); RSS_AFTER=$(result analytics_rss_kib "$WORK/analytics.txt" 2)
RSS_HWM=$(result analytics_rss_kib "$WORK/analytics.txt" 3)
A_ACK=$(result analytics_durable "$WORK/analytics.txt"); A_FOUND=$(result analytics_durable "$WORK/analytics.txt" 2)
DB_BYTES=$(result analytics_db_bytes "$WORK/analytics.txt")

a() { sed -n "s/^RESULT abtest_assign_ns $1 //p" "$WORK/assign.txt" | awk '{print $1}'; }
AS_BASE=$(a baseline); AS_ASSIGNED=$(a assigned); AS_CONTROL=$(a control)
AS_BASE_W=$(a baseline_wire); AS_ASSIGNED_W=$(a assigned_wire)
AS_DELTA=$(calc '%.0f' "$AS_ASSIGNED - $AS_BASE"); AS_DELTA_W=$(calc '%.0f' "$AS_ASSIGNED_W - $AS_BASE_W")

r() { sed -n "s/^RESULT abtest_ms $1 //p" "$WORK/abtest.txt" | awk -v f="$2" '{print $f}'; }
AB_BASE=$(r baseline_project 1); AB_EXP=$(r experiment 1); AB_RES=$(r results 1); AB_RES_MAX=$(r results 3)
AB_SEED_N=$(result abtest_seed "$WORK/abtest.txt"); AB_SEED_S=$(result abtest_seed "$WORK/abtest.txt" 2)
AB_COUNTED=$(result abtest_results_count "$WORK/abtest.txt")
AB_RSS=$(result abtest_rss_kib "$WORK/abtest.txt")
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "# promptstore analytics and A/B benchmark results"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
  echo "- toolchain: $(rustc --version), release profile"
  echo "- load average (1/5/15 min) at start: $LOAD_START, at end: $LOAD_END (other work on the machine shows here)"
  echo "- command: \`bench/analytics.sh$([ "$QUICK" = 1 ] && echo ' --quick')\` ($EVENTS events per data set, ${INGEST_SECONDS}s ingestion rounds × $INGEST_ROUNDS, $RUNS timed runs per query, medians)"
  echo
  echo "| # | what | baseline (same run) | promptstore | ratio / difference | target | verdict |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  echo "| 1a | ingestion over HTTP, batches of 1,000, $INGEST_CLIENTS clients, server on every core, throughput | raw SQLite inserts $(calc '%.0f' "$RAW") events/s | $(calc '%.0f' "$HTTP") events/s (min $HTTP_MIN, max $HTTP_MAX) | **${RATIO}%** of raw (median of per-round ratios) | ≥ 100,000 events/s | $(verdict "$HTTP >= 100000") |"
  echo "| 1b | the same, relative to the baseline | | | ${RATIO}% | ≥ 50% of raw | $(verdict "$RATIO >= 50") |"
  echo "| 1c | every acknowledged event durable (server killed with SIGKILL) | acknowledged $D_ACK | in events.db $D_FOUND, in day cells $D_CELLS | $D_OK of $D_ROUNDS rounds equal | equal | $(verdict "$D_OK == $D_ROUNDS && $D_ACK == $D_FOUND && $D_ACK == $D_CELLS") |"
  echo "| 2a | analytics summary, project, 30 days, $SEED_N events | \`GET /api/v1/project\` $BASE_MS ms | $SUM_MS ms (max $SUM_MAX) | +$(calc '%.1f' "$SUM_MS - $BASE_MS") ms | < 100 ms | $(verdict "$SUM_MS < 100") |"
  echo "| 2b | the same with \`group_by=prompt,version,label,model\` | $BASE_MS ms | $GRP_MS ms (max $GRP_MAX) | +$(calc '%.1f' "$GRP_MS - $BASE_MS") ms | < 100 ms | $(verdict "$GRP_MS < 100") |"
  echo "| 2c | hourly time series of one prompt, 30 days | $BASE_MS ms | $TS_MS ms (max $TS_MAX) | +$(calc '%.1f' "$TS_MS - $BASE_MS") ms | < 100 ms | $(verdict "$TS_MS < 100") |"
  echo "| 2d | server RSS during and after the $SEED_N-event run | | peak sampled while ingesting $(MB "$RSS_PEAK") MB; after the queries $(MB "$RSS_AFTER") MB (VmHWM $(MB "$RSS_HWM") MB) | | < 200 MB | $(verdict "$RSS_HWM * 1024 < 200e6") |"
  echo "| 2e | the summary saw every event; durable after SIGKILL | acknowledged $A_ACK | summary count $COUNTED, in events.db $A_FOUND | | equal | $(verdict "$COUNTED == $A_ACK && $A_FOUND == $A_ACK") |"
  echo "| 3a | arm assignment in a warm resolve (\`ProjectSnapshot::resolve_for\`, in-process) | no experiment $AS_BASE ns | assigned $AS_ASSIGNED ns (running, no unit id: $AS_CONTROL ns) | +$AS_DELTA ns | < 1 µs added | $(verdict "$AS_DELTA < 1000") |"
  echo "| 3a' | the same plus the answer's wire form (\`Resolved::to_wire\`) | $AS_BASE_W ns | $AS_ASSIGNED_W ns | +$AS_DELTA_W ns | (< 1 µs) | $(verdict "$AS_DELTA_W < 1000") |"
  echo "| 3b | experiment results, 3 arms, 3 metrics, $AB_SEED_N attributed events over 30 days | \`GET /api/v1/experiments/{id}\` $AB_EXP ms (\`/project\` $AB_BASE ms) | $AB_RES ms (max $AB_RES_MAX) | +$(calc '%.1f' "$AB_RES - $AB_EXP") ms | < 50 ms | $(verdict "$AB_RES < 50") |"
  echo "| 3c | the results counted every event | stored $AB_SEED_N | counted $AB_COUNTED | | equal | $(verdict "$AB_COUNTED == $AB_SEED_N") |"
  echo
  echo "Ingestion: server CPU $ICPU% of one core (median), $SRV_US µs per event (raw baseline $RAW_US µs per row, load driver $DRV_US µs per event); batch round trip p50 $B50 ms, p99 $B99 ms."
  echo "Seeding the query data set over HTTP (events in arrival order over 30 days, so each batch"
  echo "touches ~1,000 distinct hour cells): $SEED_N events in $SEED_S s = $(calc '%.0f' "$SEED_EPS") events/s sustained;"
  echo "files on disk afterwards: $(calc '%.2f' "$DB_BYTES / 1e9") GB. The experiment's $AB_SEED_N events were stored through"
  echo "\`AnalyticsStore::ingest\` in transactions of 20,000 in $AB_SEED_S s; server RSS after its results: $(MB "$AB_RSS") MB."
  echo
  echo "Raw output:"
  echo
  echo '```'
  grep -h -e '^RESULT' -e 'round' "$WORK/ingest.txt" "$WORK/analytics.txt" "$WORK/assign.txt" "$WORK/abtest.txt" || true
  echo '```'
} >"$WORK/analytics.md"

mkdir -p "$ROOT/bench/results"
cp "$WORK/analytics.md" "$ROOT/bench/results/analytics.md"
say "results (also in bench/results/analytics.md)"
cat "$WORK/analytics.md"
