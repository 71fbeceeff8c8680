#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, combined broker+controller) on loopback,
# for development and CI. Jars come from Maven Central via `mvn` and are cached.
#
#   deploy/dev/kafka.sh start|stop|status|env
#
# Environment:
#   KAFKA_PORT             broker port (default 19092)
#   KAFKA_CONTROLLER_PORT  controller port (default KAFKA_PORT+1, i.e. 19093)
#   KAFKA_VERSION          org.apache.kafka:kafka_2.13 version (default 4.1.1)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to serve (default 90)
#   KAFKA_HEAP_OPTS        JVM heap (default "-Xmx512m -Xms256m")
#   TRIAGE_DEV_DIR         cache root (default $HOME/.cache/triage-dev)
#   JAVA_HOME / JAVA       Java 17+ to use (default: java on PATH)
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
PORT="${KAFKA_PORT:-19092}"
CTRL_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
BASE="${TRIAGE_DEV_DIR:-$HOME/.cache/triage-dev}/kafka"
JARS="$BASE/jars/$KAFKA_VERSION"        # cached jars (lib/) + generated pom.xml
NODE="$BASE/node-$PORT"                 # per-port instance: config, pid, console log
DATA="$NODE/data"                       # KRaft metadata + topic data (wipe to reset)
LOGS="$NODE/logs"                       # server.log etc. (safe to wipe)
PIDFILE="$NODE/kafka.pid"
if [[ -n "${JAVA:-}" ]]; then :; elif [[ -n "${JAVA_HOME:-}" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=java; fi

log() { echo "kafka.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  cat >&2 <<EOF
usage: $0 {start|stop|status|env}
  start   fetch jars (first time), format storage (first time), start broker, wait until it serves
  stop    SIGTERM the broker (SIGKILL after 30 s)
  status  exit 0 if the broker is running and listening on 127.0.0.1:$PORT
  env     print: export KAFKA_BROKERS=127.0.0.1:$PORT
state: $NODE   jars: $JARS
EOF
  exit 2
}

env_line() { echo "export KAFKA_BROKERS=127.0.0.1:$PORT"; }
kjava() { "$JAVA" -Xmx256m -cp "$JARS/lib/*" -Dlog4j2.configurationFile="$NODE/log4j2-tools.properties" "$@"; }

# Prints the broker pid if our broker process is alive; removes stale pid files.
running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid cmd=""; pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)"
  if [[ "$cmd" == *"kafka.Kafka $NODE/server.properties"* ]]; then
    echo "$pid"; return 0
  fi
  log "removing stale pid file ($PIDFILE, pid '${pid}')"
  rm -f "$PIDFILE"; return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Real readiness check: a metadata request that must list our broker (node 1).
serving() {
  port_open "$PORT" || return 1
  local out  # captured, not piped into grep -q (SIGPIPE + pipefail would give false negatives)
  out="$(timeout 30 "$JAVA" -Xmx128m -cp "$JARS/lib/*" -Dlog4j2.configurationFile="$NODE/log4j2-tools.properties" \
    org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$PORT" 2>/dev/null)" || return 1
  [[ "$out" == *"127.0.0.1:$PORT (id: 1 "* ]]
}

fetch_jars() {
  [[ -f "$JARS/.complete" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch Kafka $KAFKA_VERSION jars)"
  log "fetching Kafka $KAFKA_VERSION jars with mvn into $JARS/lib (first run only)..."
  mkdir -p "$JARS"
  cat >"$JARS/pom.xml" <<EOF
<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.triage</groupId><artifactId>kafka-dev-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <!-- broker (kafka.Kafka) and storage format tool (kafka.tools.StorageTool) -->
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <!-- CLI tools: TopicCommand, BrokerApiVersionsCommand, console producer/consumer -->
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version>
      <exclusions><exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion></exclusions>
    </dependency>
    <!-- slf4j 1.x -> log4j2 binding so the broker logs to a file -->
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
EOF
  rm -rf "$JARS/lib" "$JARS/lib.tmp"
  if ! mvn -B -q -f "$JARS/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
       -DincludeScope=runtime -DoutputDirectory="$JARS/lib.tmp" >"$JARS/mvn.log" 2>&1; then
    tail -n 40 "$JARS/mvn.log" >&2; die "mvn failed (full log: $JARS/mvn.log)"
  fi
  ls "$JARS/lib.tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "mvn produced no kafka jar (see $JARS/mvn.log)"
  mv "$JARS/lib.tmp" "$JARS/lib" && touch "$JARS/.complete"
}

write_config() {
  mkdir -p "$DATA" "$LOGS"
  cat >"$NODE/server.properties" <<EOF
# Generated by deploy/dev/kafka.sh - rewritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CTRL_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CTRL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CTRL_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.segment.bytes=16777216
log.retention.hours=24
log.retention.check.interval.ms=60000
EOF
  cat >"$NODE/log4j2.properties" <<'EOF'
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
EOF
  printf 'status = error\nrootLogger.level = ERROR\n' >"$NODE/log4j2-tools.properties"
}

dump_logs() {
  log "---- tail of $NODE/console.out ----"; tail -n 20 "$NODE/console.out" >&2 2>/dev/null || true
  log "---- tail of $LOGS/server.log ----";  tail -n 40 "$LOGS/server.log" >&2 2>/dev/null || true
}

cmd_start() {
  local pid
  if pid="$(running_pid)"; then
    if serving; then log "already running (pid $pid)"; env_line; return 0; fi
    die "broker process $pid exists but does not serve on 127.0.0.1:$PORT; run '$0 stop' first"
  fi
  port_open "$PORT" && die "127.0.0.1:$PORT is in use by another process"
  port_open "$CTRL_PORT" && die "127.0.0.1:$CTRL_PORT (controller) is in use by another process"
  command -v "$JAVA" >/dev/null || die "java not found (need Java 17+; set JAVA_HOME)"
  local jv; jv="$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  [[ -n "$jv" && "$jv" -ge 17 ]] || die "Kafka $KAFKA_VERSION needs Java 17+, '$JAVA' is version '${jv:-?}'"

  local t0=$SECONDS
  fetch_jars
  write_config
  if [[ ! -f "$DATA/meta.properties" ]]; then
    local cid; cid="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    log "formatting storage in $DATA (cluster id $cid)"
    kjava kafka.tools.StorageTool format --standalone -t "$cid" -c "$NODE/server.properties" >"$NODE/format.log" 2>&1 ||
      { cat "$NODE/format.log" >&2; die "storage format failed"; }
  fi

  [[ -f "$LOGS/server.log" ]] && mv -f "$LOGS/server.log" "$LOGS/server.log.previous"
  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$PORT (controller $CTRL_PORT), logs in $LOGS"
  # shellcheck disable=SC2086 # HEAP_OPTS is intentionally word-split
  nohup "$JAVA" $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dkafka.logs.dir="$LOGS" -Dlog4j2.configurationFile="$NODE/log4j2.properties" \
    -cp "$JARS/lib/*" kafka.Kafka "$NODE/server.properties" >"$NODE/console.out" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PIDFILE"

  local deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"; dump_logs; die "broker exited during startup"
    fi
    if serving; then log "ready after $((SECONDS - t0)) s (pid $pid)"; env_line; return 0; fi
    sleep 1
  done
  dump_logs
  log "broker did not serve within ${START_TIMEOUT}s; stopping it"
  cmd_stop || true
  exit 1
}

cmd_stop() {
  local pid i
  pid="$(running_pid)" || { log "not running"; return 0; }
  log "stopping broker (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; log "stopped"; return 0; }
    sleep 0.5
  done
  log "still alive after 30 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 1
  rm -f "$PIDFILE"
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    if port_open "$PORT"; then log "running (pid $pid) on 127.0.0.1:$PORT"; return 0; fi
    log "process $pid alive but 127.0.0.1:$PORT not accepting connections (starting?)"; return 1
  fi
  log "not running"; return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) env_line ;;
  *) usage ;;
esac
