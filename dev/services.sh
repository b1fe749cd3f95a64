#!/usr/bin/env bash
# Start, stop and describe the real local services the job and its tests use, all on 127.0.0.1:
#   PostgreSQL      a private cluster in $ETL_SERVICES_DIR/pg (Debian's postgresql package)
#   Apache Kafka    a single KRaft node from the Maven Central jars listed in dev/pom.xml
#   Pushgateway     Debian's prometheus-pushgateway
#
# Usage: dev/services.sh install|start [SERVICE...]|stop [SERVICE...]|status|running|env
#   install  apt + mvn: fetch what is missing (idempotent, cached in ~/.m2)
#   start    start all three, or only the ones named (installs first if needed), wait until they
#            answer, print the env vars
#   stop     stop all three, or only the ones named (postgres, kafka, pushgateway)
#   running  print the names of the services that answer now, one per line
#   env      print the env vars to export (eval "$(dev/services.sh env)"); after dev/demo.sh
#            also the demo's topic and group, so that `etl plan` and `etl runs` work next
#
# Each service keeps its state in $ETL_SERVICES_DIR (default /tmp/etl-services), the
# Pushgateway's persistence file included, so two state directories never share metrics.
#
# Ports can be moved with ETL_PG_PORT, ETL_KAFKA_PORT, ETL_PUSHGATEWAY_PORT. The defaults sit
# below Linux's ephemeral range (32768-60999), where a client's outgoing connection could hold
# the port at the moment a server wants to listen on it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
state="${ETL_SERVICES_DIR:-/tmp/etl-services}"
pg_port="${ETL_PG_PORT:-25432}"
kafka_port="${ETL_KAFKA_PORT:-29092}"
controller_port=$((kafka_port + 1))
pgw_port="${ETL_PUSHGATEWAY_PORT:-29091}"
kafka_libs="$state/kafka-libs"

log() { printf 'services: %s\n' "$*" >&2; }

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  return 1
}

as_pg() {
  # PostgreSQL refuses to run as root; run its tools as the postgres system user then.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install() { # install [no-jars]: the Debian packages, then the Kafka jars unless "no-jars"
  local missing=()
  pg_bin >/dev/null || missing+=(postgresql)
  command -v prometheus-pushgateway >/dev/null || missing+=(prometheus-pushgateway)
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if [ "${1:-}" != no-jars ] && [ ! -f "$kafka_libs/.complete" ]; then
    log "fetching Kafka jars with mvn"
    mkdir -p "$kafka_libs"
    mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$kafka_libs" \
      >"$state/mvn.log" 2>&1 || { cat "$state/mvn.log" >&2; return 1; }
    touch "$kafka_libs/.complete"
  fi
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { log "$what did not come up; see $state/*.log"; return 1; }
    sleep 0.5
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_pg() {
  local bin
  bin="$(pg_bin)"
  mkdir -p "$state"
  chmod a+x "$state" # the postgres user must reach its data directory inside it
  if [ ! -f "$state/pg/PG_VERSION" ]; then
    mkdir -p "$state/pg"
    [ "$(id -u)" = 0 ] && chown postgres: "$state/pg"
    as_pg "$bin/initdb" -D "$state/pg" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$state/initdb.log"
  fi
  if ! as_pg "$bin/pg_ctl" -D "$state/pg" status >/dev/null 2>&1; then
    touch "$state/postgres.log"
    [ "$(id -u)" = 0 ] && chown postgres: "$state/postgres.log"
    as_pg "$bin/pg_ctl" -D "$state/pg" -l "$state/postgres.log" -w \
      -o "-p $pg_port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
  fi
  wait_for 30 PostgreSQL "$bin/pg_isready" -h 127.0.0.1 -p "$pg_port"
}

start_kafka() {
  local dir="$state/kafka"
  mkdir -p "$dir"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$kafka_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$kafka_port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
EOF
  cat >"$dir/log4j2.properties" <<EOF
rootLogger.level=WARN
rootLogger.appenderRef.file.ref=FILE
appender.file.type=File
appender.file.name=FILE
appender.file.fileName=$state/kafka.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
EOF
  local cp="$kafka_libs/*"
  local java_opts=(-Xms256m -Xmx1g -XX:+UseG1GC -Dlog4j2.configurationFile="$dir/log4j2.properties")
  if [ ! -f "$dir/data/meta.properties" ]; then
    java "${java_opts[@]}" -cp "$cp" kafka.tools.StorageTool format --standalone \
      -t "etl-local-cluster-0001" -c "$dir/server.properties" >"$state/kafka-format.log" 2>&1 ||
      java "${java_opts[@]}" -cp "$cp" kafka.tools.StorageTool format \
        -t "etl-local-cluster-0001" -c "$dir/server.properties" >>"$state/kafka-format.log" 2>&1
  fi
  if ! port_open "$kafka_port"; then
    nohup java "${java_opts[@]}" -cp "$cp" kafka.Kafka "$dir/server.properties" \
      >"$state/kafka.out" 2>&1 &
    echo $! >"$state/kafka.pid"
  fi
  wait_for 90 Kafka port_open "$kafka_port"
}

start_pushgateway() {
  if ! port_open "$pgw_port"; then
    mkdir -p "$state"
    nohup prometheus-pushgateway --web.listen-address="127.0.0.1:$pgw_port" \
      --persistence.file="$state/pushgateway.data" >"$state/pushgateway.log" 2>&1 &
    echo $! >"$state/pushgateway.pid"
  fi
  wait_for 30 Pushgateway port_open "$pgw_port"
}

stop_pid() {
  local f="$state/$1.pid"
  [ -f "$f" ] || return 0
  local pid
  pid="$(cat "$f")"
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

print_env() {
  cat <<EOF
export ETL_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:$kafka_port
export ETL_POSTGRES__DSN=postgresql://postgres@127.0.0.1:$pg_port/postgres
export ETL_PUSHGATEWAY__URL=http://127.0.0.1:$pgw_port
EOF
  # written by dev/demo.sh: the topic and group it loaded
  [ ! -f "$state/demo.env" ] || cat "$state/demo.env"
}

running() {
  port_open "$pg_port" && echo postgres
  port_open "$kafka_port" && echo kafka
  port_open "$pgw_port" && echo pushgateway
  return 0
}

stop_pg() {
  local bin
  if bin="$(pg_bin)" && [ -f "$state/pg/PG_VERSION" ]; then
    as_pg "$bin/pg_ctl" -D "$state/pg" -m fast stop >/dev/null 2>&1 || true
  fi
}

stop_services() { # stop_services [postgres|kafka|pushgateway ...] (none named: all)
  local names=("$@")
  [ ${#names[@]} -gt 0 ] || names=(kafka pushgateway postgres)
  local name
  for name in "${names[@]}"; do
    case "$name" in
      kafka) stop_pid kafka ;;
      pushgateway) stop_pid pushgateway ;;
      postgres) stop_pg ;;
      *) log "unknown service $name"; return 2 ;;
    esac
  done
  log "stopped ${names[*]}"
}

case "${1:-}" in
  install) install ;;
  start)
    shift
    names=("$@")
    [ ${#names[@]} -gt 0 ] || names=(postgres kafka pushgateway)
    if [[ " ${names[*]} " == *" kafka "* ]]; then install; else install no-jars; fi
    for name in "${names[@]}"; do
      case "$name" in
        postgres) start_pg ;;
        kafka) start_kafka ;;
        pushgateway) start_pushgateway ;;
        *) log "unknown service $name"; exit 2 ;;
      esac
    done
    log "${names[*]} up (state in $state)"
    print_env
    ;;
  stop)
    shift
    stop_services "$@"
    ;;
  running) running ;;
  status)
    port_open "$pg_port" && log "postgres up on $pg_port" || log "postgres down"
    port_open "$kafka_port" && log "kafka up on $kafka_port" || log "kafka down"
    port_open "$pgw_port" && log "pushgateway up on $pgw_port" || log "pushgateway down"
    ;;
  env) print_env ;;
  *)
    echo "usage: $0 install|start [SERVICE...]|stop [SERVICE...]|status|running|env" >&2
    exit 2
    ;;
esac
