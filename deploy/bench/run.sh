#!/usr/bin/env bash
# Benchmark harness: Triage side by side with a real Alertmanager on loopback,
# an offered-load sweep with a plot, Kafka → incident throughput with the real
# broker, and the correlation-core Go benchmarks. See BENCHMARKS.md.
#
#   make bench                   # or: deploy/bench/run.sh
#   BENCH_OUT=/tmp/b deploy/bench/run.sh
#
# Every process it starts is stopped on exit (also on Ctrl-C), the Kafka
# broker too when it was not already running; every run gets
# fresh temporary data directories, so running it again measures the same
# thing. Results go to $BENCH_OUT (default bench-results/<UTC date-time>):
#   summary.md          every figure, with the machine it was measured on
#   sidebyside.jsonl    one line per load run (triage-loadgen JSON + memory)
#   sweep.csv           offered load → achieved throughput, p50/p99 latency
#   throughput-latency.png  the plot of sweep.csv
#   kafka-loadgen.jsonl one line per Kafka → incident run (triage-loadgen JSON)
#   kafka.txt, gobench.txt  raw output of TestKafkaThroughput and go test -bench
#   logs/               daemon logs
#
# Environment (defaults in brackets):
#   BENCH_OUT          output directory [bench-results/<date>]
#   BENCH_REPS         repetitions of each side-by-side run [3]
#   BENCH_CONCURRENCY  senders in the side-by-side runs [8]
#   BENCH_DUP          share of duplicate alerts in the side-by-side runs [0.5]
#   BENCH_REQ_10       requests of 10 alerts per side-by-side run [12000]
#   BENCH_REQ_1        requests of 1 alert per side-by-side run [40000]
#   BENCH_RATES        offered loads of the sweep, events/s [1000 2000 5000 10000 15000 20000]
#   BENCH_SWEEP_DURATION  length of each sweep step [10s]
#   BENCH_SWEEP_AM     also sweep Alertmanager: 1 or 0 [1]
#   BENCH_KAFKA_LOADGEN_MESSAGES  messages triage-loadgen produces to a running
#                      triage serve per Kafka → incident run, 0 to skip [200000]
#   BENCH_KAFKA_FORMAT one generic event (events) or one Alertmanager webhook
#                      payload (webhook) per message [events]
#   BENCH_KAFKA_PER_MESSAGE  alerts per webhook payload [1]
#   BENCH_KAFKA_UNIQUE distinct alerts in those runs [20000]
#   BENCH_KAFKA_WARMUP warmup messages of those runs, produced and applied
#                      before measuring (so the daemon has joined its group) [100]
#   BENCH_KAFKA_MESSAGES  messages of TestKafkaThroughput, 0 to skip [200000]
#   BENCH_KAFKA_REPS   repetitions of each Kafka bench [3]
#   BENCH_GOBENCH      run the Go benchmarks: 1 or 0 [1]
#   BENCH_GOBENCH_COUNT  go test -count [3]
#   GO                 go command [go]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
GO="${GO:-go}"
OUT="${BENCH_OUT:-$ROOT/bench-results/$(date -u +%Y-%m-%dT%H%MZ)}"
REPS="${BENCH_REPS:-3}"
CONC="${BENCH_CONCURRENCY:-8}"
DUP="${BENCH_DUP:-0.5}"
REQ_10="${BENCH_REQ_10:-12000}"
REQ_1="${BENCH_REQ_1:-40000}"
RATES="${BENCH_RATES:-1000 2000 5000 10000 15000 20000}"
SWEEP_DURATION="${BENCH_SWEEP_DURATION:-10s}"
SWEEP_AM="${BENCH_SWEEP_AM:-1}"
KAFKA_MESSAGES="${BENCH_KAFKA_MESSAGES:-200000}"
KAFKA_LG_MESSAGES="${BENCH_KAFKA_LOADGEN_MESSAGES:-200000}"
KAFKA_FORMAT="${BENCH_KAFKA_FORMAT:-events}"
KAFKA_PER="${BENCH_KAFKA_PER_MESSAGE:-1}"
KAFKA_UNIQUE="${BENCH_KAFKA_UNIQUE:-20000}"
KAFKA_WARMUP="${BENCH_KAFKA_WARMUP:-100}"
KAFKA_REPS="${BENCH_KAFKA_REPS:-3}"
GOBENCH="${BENCH_GOBENCH:-1}"
GOBENCH_COUNT="${BENCH_GOBENCH_COUNT:-3}"
SWEEP_PER_REQUEST=10 # alerts per request in the sweep (Prometheus batches alerts)

log() { echo "bench: $*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in curl jq awk; do
  command -v "$tool" >/dev/null || die "'$tool' is needed"
done
command -v "$GO" >/dev/null || die "'$GO' not found"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/triage-bench.XXXXXX")"
PIDS=()
KAFKA_STARTED=0
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ $KAFKA_STARTED == 1 ]]; then # started here: leave the machine as it was
    deploy/dev/kafka.sh stop >/dev/null 2>&1 || true
  fi
  if [[ -d "$TMP/logs" && -d "$OUT" ]]; then
    mkdir -p "$OUT/logs" && cp -r "$TMP/logs/." "$OUT/logs/" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$OUT" "$TMP/bin" "$TMP/logs"
log "results in $OUT"

# --- 1. build -------------------------------------------------------------
log "building triage, triage-loadgen and the plotter"
"$GO" build -o "$TMP/bin/triage" ./cmd/triage
"$GO" build -o "$TMP/bin/triage-loadgen" ./cmd/triage-loadgen
"$GO" build -o "$TMP/bin/plot" ./deploy/bench/plot
AM_BIN="$(deploy/dev/alertmanager.sh build)" || die "cannot build Alertmanager (deploy/dev/alertmanager.sh build)"
AM_VERSION="$("$AM_BIN" --version 2>&1 | head -1)"
LOADGEN="$TMP/bin/triage-loadgen"

# free_port prints a loopback TCP port nobody listens on.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}

# wait_ready URL: until GET URL answers 2xx (10 s).
wait_ready() {
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  die "$1 did not become ready"
}

# metric URL NAME: the sum of NAME's series on URL/metrics (empty when absent).
metric() {
  curl -sf "$1/metrics" | awk -v n="$2" '
    $1 == n || index($1, n "{") == 1 { s += $NF; found = 1 }
    END { if (found) printf "%.0f\n", s }'
}

TRIAGE_URL="" TRIAGE_PID="" AM_URL="" AM_PID=""
start_triage() { # [config]; fresh data dir; sets TRIAGE_URL, TRIAGE_PID
  local port dir
  port="$(free_port)"
  dir="$(mktemp -d "$TMP/triage-data.XXXXXX")"
  "$TMP/bin/triage" serve ${1:+--config "$1"} --listen "127.0.0.1:$port" --data-dir "$dir" >>"$TMP/logs/triage.log" 2>&1 &
  TRIAGE_PID=$!
  PIDS+=("$TRIAGE_PID")
  TRIAGE_URL="http://127.0.0.1:$port"
  wait_ready "$TRIAGE_URL/readyz"
}
start_am() { # fresh storage; a route to a receiver with no integrations; no cluster
  local port dir
  port="$(free_port)"
  dir="$(mktemp -d "$TMP/am-data.XXXXXX")"
  cat >"$dir/alertmanager.yml" <<'EOF'
route:
  receiver: "null"
receivers:
  - name: "null"
EOF
  "$AM_BIN" --config.file="$dir/alertmanager.yml" --storage.path="$dir" \
    --web.listen-address="127.0.0.1:$port" --cluster.listen-address= >>"$TMP/logs/alertmanager.log" 2>&1 &
  AM_PID=$!
  PIDS+=("$AM_PID")
  AM_URL="http://127.0.0.1:$port"
  wait_ready "$AM_URL/-/ready"
}
stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# --- 2, 3. side by side -----------------------------------------------------
# Each repetition starts both daemons fresh and sends the same request
# sequence (same seed, same count, same duplicates) flat out to each, in
# alternating order; memory is read from each one's /metrics after its run.
SIDE="$OUT/sidebyside.jsonl"
: >"$SIDE"
# Triage serves Go's profiles (http.pprof) like Alertmanager does, so that
# both can be asked for a full garbage collection before memory is read.
TRIAGE_BENCH_CONFIG="$TMP/triage-bench.yaml"
printf 'http:\n  pprof: true\n' >"$TRIAGE_BENCH_CONFIG"
# heap_after_gc TARGET URL: the live heap (bytes allocated and not freed)
# right after full garbage collections, forced through /debug/pprof/heap?gc=1.
# Triage is first asked for a read, which waits until the write-ahead log
# is checkpointed: the records queued for the store are not counted.
heap_after_gc() {
  if [[ $1 == triage ]]; then
    curl -sf -o /dev/null "$2/api/v1/incidents?limit=1" || true
  fi
  # Twice: objects parked in sync.Pools (bbolt's page buffers, encoders)
  # survive one collection as the pools' victims and go at the second.
  curl -sf -o /dev/null "$2/debug/pprof/heap?gc=1" || true
  curl -sf -o /dev/null "$2/debug/pprof/heap?gc=1" || true
  metric "$2" go_memstats_alloc_bytes
}
load_run() { # target url per_request requests rep
  local target=$1 url=$2 per=$3 requests=$4 rep=$5 rss inuse live live0 alerts
  live0="$(heap_after_gc "$target" "$url")"
  "$LOADGEN" --url "$url" --format v2 --alerts-per-request "$per" --concurrency "$CONC" \
    --requests "$requests" --duration 120s --duplicate-ratio "$DUP" --output json --allow-errors \
    >"$TMP/run.json" 2>>"$TMP/logs/loadgen.log"
  rss="$(metric "$url" process_resident_memory_bytes)"
  inuse="$(metric "$url" go_memstats_heap_inuse_bytes)"
  live="$(heap_after_gc "$target" "$url")"
  if [[ $target == triage ]]; then
    alerts="$(metric "$url" triage_correlate_alerts_live)"
  else # every state: active, suppressed, unprocessed
    alerts="$(metric "$url" alertmanager_alerts)"
  fi
  jq -c --arg target "$target" --argjson rep "$rep" --arg rss "${rss:-}" --arg inuse "${inuse:-}" \
    --arg live "${live:-}" --arg live0 "${live0:-}" --arg alerts "${alerts:-}" \
    '. + {target: $target, rep: $rep,
          rss_bytes: ($rss | tonumber? // null), heap_inuse_bytes: ($inuse | tonumber? // null),
          heap_live_bytes: ($live | tonumber? // null), heap_live_before_bytes: ($live0 | tonumber? // null),
          alerts_live: ($alerts | tonumber? // null)}' "$TMP/run.json" | tee -a "$SIDE" |
    jq -r '"bench:   \(.target) \(.alerts_per_request)/req rep \(.rep): \(.alerts_per_s) alerts/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, rss \((.rss_bytes // 0) / 1048576 | floor) MiB, errors \(.errors)"' >&2
}
for per in 10 1; do
  requests=$REQ_10
  [[ $per == 1 ]] && requests=$REQ_1
  for rep in $(seq 1 "$REPS"); do
    log "side by side: $per alert(s)/request, $requests requests, duplicates $DUP, concurrency $CONC, repetition $rep/$REPS"
    start_triage "$TRIAGE_BENCH_CONFIG"
    start_am
    if ((rep % 2 == 1)); then
      load_run triage "$TRIAGE_URL" "$per" "$requests" "$rep"
      load_run alertmanager "$AM_URL" "$per" "$requests" "$rep"
    else
      load_run alertmanager "$AM_URL" "$per" "$requests" "$rep"
      load_run triage "$TRIAGE_URL" "$per" "$requests" "$rep"
    fi
    stop_pid "$TRIAGE_PID"
    stop_pid "$AM_PID"
  done
done

# Medians per (alerts per request, target), then the ratios.
MEDIANS="$(jq -s '
  def med(f): (map(f) | map(select(. != null)) | sort) as $v | if ($v | length) == 0 then null else $v[($v | length) / 2 | floor] end;
  group_by([.alerts_per_request, .target]) | map({
    per: .[0].alerts_per_request, target: .[0].target, runs: length,
    alerts_per_s: med(.alerts_per_s), p50_ms: med(.p50_ms), p99_ms: med(.p99_ms),
    rss_mib: med(.rss_bytes / 1048576), heap_inuse_mib: med(.heap_inuse_bytes / 1048576),
    heap_live_mib: med(if .heap_live_bytes then .heap_live_bytes / 1048576 else null end),
    bytes_per_alert: med(if .heap_live_bytes and .alerts_live and .alerts_live > 0
                         then (.heap_live_bytes - (.heap_live_before_bytes // 0)) / .alerts_live else null end),
    alerts_live: med(.alerts_live), errors: (map(.errors) | add),
    duplicate_ratio: med(.duplicate_ratio)})' "$SIDE")"
echo "$MEDIANS" >"$OUT/sidebyside-medians.json"

# --- 4. offered-load sweep ----------------------------------------------------
SWEEP="$OUT/sweep.csv"
echo "target,offered_eps,achieved_eps,p50_ms,p99_ms,errors,late" >"$SWEEP"
sweep() { # target start_function
  local target=$1 url eps rate
  "$2"
  if [[ $target == triage ]]; then url=$TRIAGE_URL; else url=$AM_URL; fi
  for eps in $RATES; do
    rate=$(awk -v e="$eps" -v p="$SWEEP_PER_REQUEST" 'BEGIN { print e / p }')
    log "sweep: $target at $eps events/s ($rate requests/s of $SWEEP_PER_REQUEST) for $SWEEP_DURATION"
    "$LOADGEN" --url "$url" --format v2 --alerts-per-request "$SWEEP_PER_REQUEST" --concurrency 64 \
      --rate "$rate" --duration "$SWEEP_DURATION" --warmup 1s --unique 20000 --output json --allow-errors \
      >"$TMP/run.json" 2>>"$TMP/logs/loadgen.log"
    jq -r --arg t "$target" --arg e "$eps" \
      '"\($t),\($e),\(.alerts_per_s),\(.p50_ms),\(.p99_ms),\(.errors),\(.late // 0)"' "$TMP/run.json" | tee -a "$SWEEP" |
      sed 's/^/bench:   /' >&2
  done
  if [[ $target == triage ]]; then stop_pid "$TRIAGE_PID"; else stop_pid "$AM_PID"; fi
}
sweep triage start_triage
[[ $SWEEP_AM == 1 ]] && sweep alertmanager start_am

# --- 5. plot ------------------------------------------------------------------
"$TMP/bin/plot" -in "$SWEEP" -out "$OUT/throughput-latency.png"
log "plot: $OUT/throughput-latency.png"

# --- 6. Kafka → incident ------------------------------------------------------
# Two measurements with the development broker:
#  a. triage-loadgen produces to a fresh topic that a running `triage serve`
#     (fresh data directory, its own consumer group) consumes, and reads the
#     daemon's /metrics until every message is applied: events/s from the
#     first produce to the last message durable in the daemon's state;
#  b. TestKafkaThroughput: a backlog produced first, then the daemon started.
KAFKA_NOTE="" KAFKA_OVERALL="" KAFKA_STEADY=""
KAFKA_LG_NOTE="" KAFKA_LG=""
if [[ $KAFKA_MESSAGES == 0 && $KAFKA_LG_MESSAGES == 0 ]]; then
  KAFKA_NOTE="skipped: BENCH_KAFKA_MESSAGES=0"
  KAFKA_LG_NOTE="skipped: BENCH_KAFKA_LOADGEN_MESSAGES=0"
elif ! { deploy/dev/kafka.sh status >/dev/null 2>&1 || KAFKA_STARTED=1; } ||
  ! deploy/dev/kafka.sh start >"$TMP/logs/kafka-start.log" 2>&1; then
  KAFKA_NOTE="skipped: deploy/dev/kafka.sh start failed (needs Java 17+ and, the first time, Maven): $(tail -1 "$TMP/logs/kafka-start.log")"
  KAFKA_LG_NOTE="$KAFKA_NOTE"
else
  eval "$(deploy/dev/kafka.sh env)"

  # a. A fresh topic, group and data directory each time. The topic gets
  # the broker's num.partitions whoever creates it first: the daemon's probe
  # for it (auto-creation) or triage-loadgen (--kafka-partitions 0).
  KAFKA_LG_RUNS="$OUT/kafka-loadgen.jsonl"
  : >"$KAFKA_LG_RUNS"
  [[ $KAFKA_LG_MESSAGES == 0 ]] && KAFKA_LG_NOTE="skipped: BENCH_KAFKA_LOADGEN_MESSAGES=0"
  for rep in $(seq 1 "$KAFKA_REPS"); do
    [[ $KAFKA_LG_MESSAGES == 0 ]] && break
    topic="triage-bench-$(date +%s%N)-$rep"
    cfg="$TMP/kafka-$rep.yaml"
    cat >"$cfg" <<EOF
kafka:
  brokers: [${KAFKA_BROKERS//,/, }]
  group: $topic
  topics: {alerts: $topic, logs: "", dead_letter: $topic-dlq}
EOF
    log "Kafka → incident: triage-loadgen, $KAFKA_LG_MESSAGES $KAFKA_FORMAT messages to a running triage serve, repetition $rep/$KAFKA_REPS"
    start_triage "$cfg"
    if "$LOADGEN" --kafka-brokers "$KAFKA_BROKERS" --kafka-topic "$topic" --kafka-partitions 0 \
      --format "$KAFKA_FORMAT" --alerts-per-request "$KAFKA_PER" --requests "$KAFKA_LG_MESSAGES" \
      --unique "$KAFKA_UNIQUE" --warmup-messages "$KAFKA_WARMUP" --url "$TRIAGE_URL" --apply-timeout 300s \
      --output json >"$TMP/run.json" 2>>"$TMP/logs/loadgen.log"; then
      jq -c --argjson rep "$rep" '. + {rep: $rep}' "$TMP/run.json" | tee -a "$KAFKA_LG_RUNS" |
        jq -r '"bench:   rep \(.rep): \(.e2e.events_per_s) events/s Kafka → incident (\(.e2e.duration_s) s, first applied after \(.e2e.first_applied_s) s); produced \(.events_per_s) events/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms; rss \((.e2e.metrics.process_resident_memory_bytes // 0) / 1048576 | floor) MiB"' >&2
    else
      KAFKA_LG_NOTE="a triage-loadgen Kafka run failed; see logs/loadgen.log"
      log "$KAFKA_LG_NOTE"
    fi
    stop_pid "$TRIAGE_PID"
  done
  if [[ -s $KAFKA_LG_RUNS ]]; then
    KAFKA_LG="$(jq -s '
      def med(f): (map(f) | map(select(. != null)) | sort) as $v | if ($v | length) == 0 then null else $v[($v | length) / 2 | floor] end;
      {runs: length, e2e_events_per_s: med(.e2e.events_per_s), e2e_all: map(.e2e.events_per_s),
       e2e_duration_s: med(.e2e.duration_s), first_applied_s: med(.e2e.first_applied_s), backlog_s: med(.e2e.backlog_s),
       produce_events_per_s: med(.events_per_s), p50_ms: med(.p50_ms), p99_ms: med(.p99_ms),
       rss_mib: med(.e2e.metrics.process_resident_memory_bytes / 1048576),
       heap_live_mib: med(.e2e.metrics.go_gc_heap_live_bytes / 1048576),
       alerts_live: med(.e2e.metrics.triage_correlate_alerts_live),
       partitions: med(.partitions), messages: med(.messages), events: med(.events),
       duplicate_ratio: med(.duplicate_ratio), produce_errors: (map(.errors) | add)}' "$KAFKA_LG_RUNS")"
    log "Kafka → incident (triage-loadgen): median $(jq -r .e2e_events_per_s <<<"$KAFKA_LG") events/s"
  fi

  # b. TestKafkaThroughput.
  [[ $KAFKA_MESSAGES == 0 ]] && KAFKA_NOTE="skipped: BENCH_KAFKA_MESSAGES=0"
  : >"$OUT/kafka.txt"
  for rep in $(seq 1 "$KAFKA_REPS"); do
    [[ $KAFKA_MESSAGES == 0 ]] && break
    log "Kafka → incident: $KAFKA_MESSAGES messages, repetition $rep/$KAFKA_REPS"
    KAFKA_BROKERS="$KAFKA_BROKERS" TRIAGE_KAFKA_BENCH="$KAFKA_MESSAGES" \
      "$GO" test -run '^TestKafkaThroughput$' -count=1 -v ./internal/app/ >>"$OUT/kafka.txt" 2>&1 ||
      KAFKA_NOTE="a Kafka bench run failed; see kafka.txt"
  done
  med_field() { # the median of the number before "$1" in kafka.txt's result lines
    grep -o "[0-9]* events/s $1" "$OUT/kafka.txt" | awk '{ print $1 }' | sort -n |
      awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
  }
  if [[ $KAFKA_MESSAGES != 0 ]]; then
    KAFKA_OVERALL="$(med_field overall)"
    KAFKA_STEADY="$(med_field steady)"
    [[ -n $KAFKA_OVERALL ]] || KAFKA_NOTE="${KAFKA_NOTE:-no result line in kafka.txt}"
    log "Kafka → incident (TestKafkaThroughput): median $KAFKA_OVERALL events/s overall, $KAFKA_STEADY steady"
  fi
fi

# --- 7. correlation-core Go benchmarks ----------------------------------------
GOBENCH_TABLE=""
if [[ $GOBENCH == 1 ]]; then
  log "go test -bench (count $GOBENCH_COUNT): internal/scenario, rules, ingest/logs"
  "$GO" test ./internal/scenario ./rules ./ingest/logs -run XXX -bench . -count "$GOBENCH_COUNT" >"$OUT/gobench.txt" 2>&1 ||
    log "go test -bench failed; see gobench.txt"
  # ClickHouse writer throughput against the local server, and the KPI
  # computation over 1M incident changes.
  if "$ROOT/deploy/dev/clickhouse.sh" start >/dev/null 2>&1; then
    log "go test -bench: ClickHouse writer (local server)"
    eval "$("$ROOT/deploy/dev/clickhouse.sh" env)"
    CLICKHOUSE_ADDR="$CLICKHOUSE_ADDR" "$GO" test ./metrics/clickhouse -run XXX -bench WriterIncidentChanges -benchtime 20x \
      -count "$GOBENCH_COUNT" >>"$OUT/gobench.txt" 2>&1 || log "ClickHouse bench failed; see gobench.txt"
  else
    log "ClickHouse did not start: writer throughput skipped"
  fi
  log "go test -bench: KPIs over 1M incident changes"
  "$GO" test ./metrics/kpi -run XXX -bench KPIOneMillion -benchtime 5x -count "$GOBENCH_COUNT" >>"$OUT/gobench.txt" 2>&1 ||
    log "KPI bench failed; see gobench.txt"
  # Median of every reported metric per benchmark (B/op and allocs/op left out).
  GOBENCH_TABLE="$(awk '
    /^pkg: / { pkg = $2; sub(".*/triage/", "", pkg) }
    /^Benchmark/ {
      name = $1; sub(/-[0-9]+$/, "", name)
      for (i = 3; i < NF; i += 2) {
        unit = $(i + 1)
        if (unit == "B/op" || unit == "allocs/op") continue
        key = pkg "\t" name "\t" unit
        if (!(key in n)) order[++keys] = key
        vals[key, ++n[key]] = $i
      }
    }
    END {
      for (k = 1; k <= keys; k++) {
        key = order[k]; c = n[key]
        for (i = 1; i <= c; i++) v[i] = vals[key, i] + 0
        for (i = 2; i <= c; i++) for (j = i; j > 1 && v[j-1] > v[j]; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
        split(key, f, "\t")
        m = v[int((c + 1) / 2)]
        printf "| %s | %s | %s | %s | %d |\n", f[1], f[2], f[3], (m >= 100 ? sprintf("%.0f", m) : sprintf("%.4g", m)), c
      }
    }' "$OUT/gobench.txt")"
fi

# --- 8. summary ---------------------------------------------------------------
CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
MEM="$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
REV="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[[ -n "$(git status --porcelain 2>/dev/null)" ]] && REV="$REV (with uncommitted changes)"
ratio() { jq -r --argjson per "$1" --arg f "$2" '
  (map(select(.per == $per)) | map({key: .target, value: .[$f]}) | from_entries) as $m
  | if $m.triage and $m.alertmanager then ($m.triage / $m.alertmanager * 100 | round / 100 | tostring) else "n/a" end' <<<"$MEDIANS"; }

{
  echo "# Triage benchmark results"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $CPU, $(nproc) CPUs, $MEM RAM, $(uname -sr)"
  echo "- $("$GO" version)"
  echo "- triage: $REV; Alertmanager: $AM_VERSION"
  echo "- load generator, daemons and benchmarks share the machine (loopback)"
  echo
  echo "## Side by side: POST /api/v2/alerts, flat out"
  echo
  echo "Same request sequence to each (seed 1), $CONC senders, duplicate share $DUP,"
  echo "$REQ_10 requests of 10 alerts / $REQ_1 requests of 1 alert per run; medians of $REPS runs,"
  echo "fresh daemons each run, targets alternating. Memory read from each daemon's /metrics after its run;"
  echo "heap after GC is the live heap right after a forced full collection, before and after the run,"
  echo "and B/alert its growth divided by the live alerts."
  echo
  echo "| alerts/request | target | alerts/s | p50 ms | p99 ms | RSS MiB | heap in use MiB | heap after GC MiB | live alerts | B/alert (heap after GC) | errors |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  jq -r '.[] | "| \(.per) | \(.target) | \(.alerts_per_s | round) | \(.p50_ms) | \(.p99_ms) | \(.rss_mib * 10 | round / 10) | \(.heap_inuse_mib * 10 | round / 10) | \(if .heap_live_mib then (.heap_live_mib * 10 | round / 10) else "n/a" end) | \(.alerts_live // "n/a") | \(if .bytes_per_alert then (.bytes_per_alert | round) else "n/a" end) | \(.errors) |"' <<<"$MEDIANS"
  echo
  echo "| alerts/request | Triage/Alertmanager throughput | Triage/Alertmanager RSS | Triage/Alertmanager heap in use | Triage/Alertmanager B/alert |"
  echo "| --- | --- | --- | --- | --- |"
  for per in 10 1; do
    echo "| $per | $(ratio "$per" alerts_per_s) | $(ratio "$per" rss_mib) | $(ratio "$per" heap_inuse_mib) | $(ratio "$per" bytes_per_alert) |"
  done
  echo
  echo "## Offered-load sweep ($SWEEP_PER_REQUEST alerts/request, 64 senders, open loop, $SWEEP_DURATION per step)"
  echo
  echo "Latency counts from each request's scheduled send time, so queueing shows. Plot: throughput-latency.png."
  echo
  echo "| target | offered events/s | achieved events/s | p50 ms | p99 ms | errors | late starts |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  tail -n +2 "$SWEEP" | awk -F, '{ printf "| %s | %s | %.0f | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }'
  echo
  echo "## Kafka → durable incident state (real broker)"
  echo
  echo "### triage-loadgen → topic → running triage serve"
  echo
  if [[ -n $KAFKA_LG ]]; then
    jq -r --arg format "$KAFKA_FORMAT" --arg per "$KAFKA_PER" --arg warmup "$KAFKA_WARMUP" '
      def r: if . == null then "n/a" else (. * 10 | round / 10 | tostring) end;
      "\(.messages) messages per run (\($format), \($per) alert(s) each: \(.events) events, \(.duplicate_ratio * 100 | round)% of the alerts sent, warmup included, repeating one sent before), \(.partitions) partition(s), produced flat out once the daemon had applied \($warmup) warmup messages; medians of \(.runs) runs, a fresh daemon, topic and consumer group each:\n\n"
      + "- **\(.e2e_events_per_s | round) events/s Kafka → durable incident state** (runs: \(.e2e_all | map(round | tostring) | join(" / "))): from the first message handed to the producer until the daemon had applied the last one (its events and offset in its fsynced write-ahead log), \(.e2e_duration_s | r) s; the first was applied after \(.first_applied_s | r) s, the last \(.backlog_s | r) s after the producer finished\n"
      + "- producing alone: \(.produce_events_per_s | round) events/s up to the broker acknowledging them; produce latency p50 \(.p50_ms) ms, p99 \(.p99_ms) ms; \(.produce_errors) messages not acknowledged\n"
      + "- daemon after the run: RSS \(.rss_mib | r) MiB, heap live \(.heap_live_mib | r) MiB, \(.alerts_live) live alerts"' <<<"$KAFKA_LG"
  fi
  [[ -n $KAFKA_LG_NOTE ]] && echo "$KAFKA_LG_NOTE"
  echo
  echo "### TestKafkaThroughput: a backlog produced first, then the daemon started"
  echo
  if [[ -n $KAFKA_OVERALL ]]; then
    echo "$KAFKA_MESSAGES messages, medians of $KAFKA_REPS runs: **$KAFKA_OVERALL events/s** overall (daemon start to last commit), $KAFKA_STEADY events/s steady."
  fi
  [[ -n $KAFKA_NOTE ]] && echo "$KAFKA_NOTE"
  echo
  echo "## Correlation core (go test -bench, medians of $GOBENCH_COUNT)"
  echo
  if [[ -n $GOBENCH_TABLE ]]; then
    echo "| package | benchmark | unit | median | runs |"
    echo "| --- | --- | --- | --- | --- |"
    echo "$GOBENCH_TABLE"
  else
    echo "skipped (BENCH_GOBENCH=0)"
  fi
} >"$OUT/summary.md"

cat "$OUT/summary.md"
log "done: $OUT/summary.md"
