#!/usr/bin/env bash
# Local Apache Kafka 3.9.x test cluster for the Kafka-based orderer: 3 ZooKeeper + 4 brokers
# (or KRaft) on 127.0.0.1, built from Maven Central jars. No Docker, no other download site.
# See scripts/kafka/README.md. Run `kafka.sh help` for the commands.
set -euo pipefail

SELF="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)/$(basename -- "${BASH_SOURCE[0]}")"
SCRIPT_DIR="$(dirname -- "$SELF")"

# ---------------------------------------------------------------------------------------------
# Settings (environment). Cluster-shape settings are frozen into <run dir>/cluster.env by
# `start`; later commands on that run dir use the frozen values.
# ---------------------------------------------------------------------------------------------
KAFKA_VERSION="${KAFKA_VERSION:-3.9.2}"
KAFKA_CACHE="${KAFKA_CACHE:-${HOME:-/tmp}/.cache/fabric-orderer-kafka/$KAFKA_VERSION}"
KAFKA_M2_REPO="${KAFKA_M2_REPO:-$KAFKA_CACHE/m2}"
KAFKA_RUN_DIR="${KAFKA_RUN_DIR:-/tmp/fabric-kafka-${USER:-$(id -un)}}"
JAVA="${JAVA:-${JAVA_HOME:+$JAVA_HOME/bin/}java}"
JAVAC="${JAVAC:-${JAVA_HOME:+$JAVA_HOME/bin/}javac}"
MVN="${MVN:-mvn}"
KAFKA_FETCH_TIMEOUT="${KAFKA_FETCH_TIMEOUT:-900}"
KAFKA_WAIT_TIMEOUT="${KAFKA_WAIT_TIMEOUT:-90}"
KAFKA_ZK_WAIT_TIMEOUT="${KAFKA_ZK_WAIT_TIMEOUT:-60}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-60}"
KAFKA_LOCK_TIMEOUT="${KAFKA_LOCK_TIMEOUT:-300}"

RUN_DIR="$KAFKA_RUN_DIR"
CLUSTER_ENV="$RUN_DIR/cluster.env"
MARKER="$RUN_DIR/.fabric-kafka-run-dir"

# shape/port settings (frozen at start)
SHAPE_VARS=(KAFKA_MODE KAFKA_HOST KAFKA_NUM_BROKERS KAFKA_NUM_ZK KAFKA_NUM_CONTROLLERS
  KAFKA_BROKER_PORT_BASE KAFKA_CONTROLLER_PORT_BASE KAFKA_ZK_PORT_BASE KAFKA_ZK_PEER_PORT_BASE
  KAFKA_ZK_ELECTION_PORT_BASE KAFKA_MESSAGE_MAX_BYTES KAFKA_SOCKET_REQUEST_MAX_BYTES
  KAFKA_REPLICATION_FACTOR KAFKA_MIN_ISR KAFKA_ZK_SESSION_TIMEOUT_MS
  KAFKA_BROKER_HEAP KAFKA_ZK_HEAP KAFKA_VERSION
  KAFKA_TLS KAFKA_SSL_PORT_BASE KAFKA_SASL_SSL_PORT_BASE KAFKA_SASL_USER KAFKA_SASL_PASSWORD
  KAFKA_UNCLEAN_LEADER_ELECTION KAFKA_NETNS KAFKA_NETNS_NET)

set_shape_defaults() {
  KAFKA_MODE="${KAFKA_MODE:-zk}"
  KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
  KAFKA_NUM_BROKERS="${KAFKA_NUM_BROKERS:-4}"
  KAFKA_NUM_ZK="${KAFKA_NUM_ZK:-3}"
  KAFKA_NUM_CONTROLLERS="${KAFKA_NUM_CONTROLLERS:-3}"   # KRaft: brokers 1..C are combined broker+controller
  KAFKA_BROKER_PORT_BASE="${KAFKA_BROKER_PORT_BASE:-29092}"         # broker N: base+N-1
  KAFKA_CONTROLLER_PORT_BASE="${KAFKA_CONTROLLER_PORT_BASE:-29192}" # KRaft controller listener
  KAFKA_ZK_PORT_BASE="${KAFKA_ZK_PORT_BASE:-22181}"                 # ZK client port
  KAFKA_ZK_PEER_PORT_BASE="${KAFKA_ZK_PEER_PORT_BASE:-22888}"       # ZK quorum port
  KAFKA_ZK_ELECTION_PORT_BASE="${KAFKA_ZK_ELECTION_PORT_BASE:-23888}" # ZK leader election port
  KAFKA_MESSAGE_MAX_BYTES="${KAFKA_MESSAGE_MAX_BYTES:-103809024}"    # 99 MiB
  KAFKA_SOCKET_REQUEST_MAX_BYTES="${KAFKA_SOCKET_REQUEST_MAX_BYTES:-104857600}" # 100 MiB (Kafka default)
  KAFKA_REPLICATION_FACTOR="${KAFKA_REPLICATION_FACTOR:-3}"
  KAFKA_MIN_ISR="${KAFKA_MIN_ISR:-2}"
  KAFKA_ZK_SESSION_TIMEOUT_MS="${KAFKA_ZK_SESSION_TIMEOUT_MS:-6000}"
  KAFKA_BROKER_HEAP="${KAFKA_BROKER_HEAP:-512m}"
  KAFKA_ZK_HEAP="${KAFKA_ZK_HEAP:-256m}"
  # SSL and SASL_SSL (PLAIN) listeners next to PLAINTEXT, with a CA and certificates that
  # `start` makes in <run dir>/tls (KAFKA_TLS=0: PLAINTEXT only). Brokers still talk PLAINTEXT
  # among themselves. Default ports: broker port + 300 (SSL) and + 400 (SASL_SSL).
  KAFKA_TLS="${KAFKA_TLS:-1}"
  KAFKA_SSL_PORT_BASE="${KAFKA_SSL_PORT_BASE:-$((KAFKA_BROKER_PORT_BASE + 300))}"
  KAFKA_SASL_SSL_PORT_BASE="${KAFKA_SASL_SSL_PORT_BASE:-$((KAFKA_BROKER_PORT_BASE + 400))}"
  KAFKA_SASL_USER="${KAFKA_SASL_USER:-orderer}"
  KAFKA_SASL_PASSWORD="${KAFKA_SASL_PASSWORD:-orderer-secret}"
  # the Fabric guide says false; true only to show that `orderer check-kafka` catches it
  KAFKA_UNCLEAN_LEADER_ELECTION="${KAFKA_UNCLEAN_LEADER_ELECTION:-false}"
  # Network-partition tests (scripts/netfault): every node in its own network namespace
  # <KAFKA_NETNS>-zkN / -brokerN on KAFKA_NETNS_NET.(20+N) / .(10+N); the scripts' own client
  # tools run in <KAFKA_NETNS>-ctl (.2). Empty: every node on KAFKA_HOST, no namespaces.
  KAFKA_NETNS="${KAFKA_NETNS:-}"
  KAFKA_NETNS_NET="${KAFKA_NETNS_NET:-10.213.0}"
}

load_cluster_env() {
  if [[ -f "$CLUSTER_ENV" ]]; then
    # shellcheck disable=SC1090
    source "$CLUSTER_ENV"
    KAFKA_CACHE="${KAFKA_CACHE_FROZEN:-$KAFKA_CACHE}"
  fi
  set_shape_defaults
}

# Light JVM settings: 2 cores are shared by 7 JVMs (and whatever else is compiling).
# C1-only JIT and SerialGC cut startup CPU a lot; override with KAFKA_*_JVM_OPTS.
COMMON_JVM_OPTS=(-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=64m
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true -Xshare:auto)
TOOL_JVM_OPTS=(-Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto
  -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true)

# ---------------------------------------------------------------------------------------------
die() { echo "kafka.sh: error: $*" >&2; exit 1; }
log() { echo "kafka.sh: $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

with_lock() { # with_lock <lockfile> cmd...
  local lf="$1"; shift
  mkdir -p "$(dirname -- "$lf")"
  exec {LOCKFD}>>"$lf"
  flock -w "$KAFKA_LOCK_TIMEOUT" "$LOCKFD" || die "could not get lock $lf within ${KAFKA_LOCK_TIMEOUT}s"
  "$@"
}

# ------------------------------------------------------------------------------- fetch ------
LIBS_DIR="$KAFKA_CACHE/libs"
HELPER_DIR="$KAFKA_CACHE/helper"
refresh_cache_paths() { LIBS_DIR="$KAFKA_CACHE/libs"; HELPER_DIR="$KAFKA_CACHE/helper"; }

fetch_stamp() {
  echo "version=$KAFKA_VERSION pom=$(sha256sum "$SCRIPT_DIR/pom.xml" | cut -c1-16)"
}
helper_stamp() { sha256sum "$SCRIPT_DIR/ReadyCheck.java" | cut -c1-16; }

is_fetched() { [[ -f "$LIBS_DIR/.complete" && "$(cat "$LIBS_DIR/.complete")" == "$(fetch_stamp)" ]]; }

do_fetch() {
  refresh_cache_paths
  if ! is_fetched; then
    command -v "$MVN" >/dev/null || die "maven ('$MVN') not found; install it (apt-get install maven)"
    local t0; t0=$(now)
    log "fetching Apache Kafka $KAFKA_VERSION + deps from Maven Central into $KAFKA_CACHE ..."
    mkdir -p "$KAFKA_CACHE"
    local work="$KAFKA_CACHE/.fetch.$$"
    rm -rf "$work"; mkdir -p "$work"
    cp "$SCRIPT_DIR/pom.xml" "$work/pom.xml"
    if ! (cd "$work" && timeout "$KAFKA_FETCH_TIMEOUT" "$MVN" -B -q -f "$work/pom.xml" \
          -Dmaven.repo.local="$KAFKA_M2_REPO" -Dkafka.version="$KAFKA_VERSION" \
          org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
          -DincludeScope=runtime -DoutputDirectory="$work/libs" >"$work/mvn.log" 2>&1); then
      tail -n 30 "$work/mvn.log" >&2
      die "maven fetch failed (log: $work/mvn.log)"
    fi
    [[ -f "$work/libs/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "kafka_2.13-$KAFKA_VERSION.jar missing after fetch"
    fetch_stamp >"$work/libs/.complete"
    rm -rf "$LIBS_DIR" "$HELPER_DIR"
    mv "$work/libs" "$LIBS_DIR"
    rm -rf "$work"
    log "fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS_DIR" | cut -f1)) in $(elapsed "$t0") s"
  fi
  if [[ ! -f "$HELPER_DIR/ReadyCheck.class" || "$(cat "$HELPER_DIR/.stamp" 2>/dev/null)" != "$(helper_stamp)" ]]; then
    if command -v "$JAVAC" >/dev/null; then
      rm -rf "$HELPER_DIR.tmp"; mkdir -p "$HELPER_DIR.tmp"
      "$JAVAC" -nowarn -d "$HELPER_DIR.tmp" -cp "$LIBS_DIR/*" "$SCRIPT_DIR/ReadyCheck.java" \
        || die "javac of ReadyCheck.java failed"
      helper_stamp >"$HELPER_DIR.tmp/.stamp"
      rm -rf "$HELPER_DIR"; mv "$HELPER_DIR.tmp" "$HELPER_DIR"
    else
      log "warning: no javac; 'wait' will fall back to kafka.admin.BrokerApiVersionsCommand"
    fi
  fi
}

ensure_fetched() {
  refresh_cache_paths
  if ! is_fetched || [[ ! -f "$HELPER_DIR/ReadyCheck.class" ]]; then
    with_lock "$KAFKA_CACHE.lock" do_fetch
  fi
}

classpath() { echo "$LIBS_DIR/*"; }

run_tool() { # run_tool <main class> args...   (short-lived client JVM)
  ensure_fetched
  # shellcheck disable=SC2086
  $(ns_argv ctl) "$JAVA" "${TOOL_JVM_OPTS[@]}" ${KAFKA_TOOL_JVM_OPTS:-} -Dlog4j.configuration="file:$SCRIPT_DIR/tools-log4j.properties" \
    -cp "$(classpath)" "$@"
}

# ----------------------------------------------------------------------------- topology -----
netns_on() { [[ -n "$KAFKA_NETNS" ]]; }
host_of() { # host_of zkN|brokerN|ctl: the address the node listens on
  if ! netns_on; then echo "$KAFKA_HOST"; return; fi
  case "$1" in
    zk*) echo "$KAFKA_NETNS_NET.$((20 + ${1#zk}))" ;;
    broker*) echo "$KAFKA_NETNS_NET.$((10 + ${1#broker}))" ;;
    ctl) echo "$KAFKA_NETNS_NET.2" ;;
    *) die "host_of: unknown node '$1'" ;;
  esac
}
ns_argv() { # ns_argv <node>: the command prefix that runs in the node's namespace (none without)
  if netns_on; then echo "ip netns exec $KAFKA_NETNS-$1"; fi
}
netfault() { python3 "$SCRIPT_DIR/../netfault/netfault.py" --prefix "$KAFKA_NETNS" "$@"; }
netns_up() { # create the namespaces of every node (idempotent)
  netns_on || return 0
  local n args=("ctl=$(host_of ctl)")
  for n in $(zk_ids); do args+=("zk$n=$(host_of "zk$n")"); done
  for n in $(broker_ids); do args+=("broker$n=$(host_of "broker$n")"); done
  netfault up "${args[@]}" || die "could not create the network namespaces (scripts/netfault)"
}
broker_port() { echo $((KAFKA_BROKER_PORT_BASE + $1 - 1)); }
controller_port() { echo $((KAFKA_CONTROLLER_PORT_BASE + $1 - 1)); }
zk_port() { echo $((KAFKA_ZK_PORT_BASE + $1 - 1)); }
ssl_port() { echo $((KAFKA_SSL_PORT_BASE + $1 - 1)); }
sasl_ssl_port() { echo $((KAFKA_SASL_SSL_PORT_BASE + $1 - 1)); }
tls_on() { [[ "$KAFKA_TLS" == 1 ]]; }
tls_dir() { echo "$RUN_DIR/tls"; }
# the SSL and SASL_SSL listeners of broker N (empty without TLS), each with a leading comma
extra_listeners() {
  local h; h=$(host_of "broker$1")
  if tls_on; then echo ",SSL://$h:$(ssl_port "$1"),SASL_SSL://$h:$(sasl_ssl_port "$1")"; fi
}
broker_ids() { seq 1 "$KAFKA_NUM_BROKERS"; }
zk_ids() { if [[ "$KAFKA_MODE" == zk ]]; then seq 1 "$KAFKA_NUM_ZK"; fi; }
bootstrap_list() { # bootstrap_list [--ssl|--sasl-ssl]
  local i out=() port=broker_port
  case "${1:-}" in
    "") ;;
    --ssl) tls_on || die "this cluster has no TLS listeners (KAFKA_TLS=0)"; port=ssl_port ;;
    --sasl-ssl) tls_on || die "this cluster has no TLS listeners (KAFKA_TLS=0)"; port=sasl_ssl_port ;;
    *) die "brokers: unknown option '$1'" ;;
  esac
  for i in $(broker_ids); do out+=("$(host_of "broker$i"):$($port "$i")"); done
  (IFS=,; echo "${out[*]}")
}
zk_connect() {
  local i out=()
  for i in $(seq 1 "$KAFKA_NUM_ZK"); do out+=("$(host_of "zk$i"):$(zk_port "$i")"); done
  (IFS=,; echo "${out[*]}")
}
controller_voters() {
  local i out=()
  for i in $(seq 1 "$KAFKA_NUM_CONTROLLERS"); do out+=("$i@$(host_of "broker$i"):$(controller_port "$i")"); done
  (IFS=,; echo "${out[*]}")
}

# ---------------------------------------------------------------------------- processes -----
pidfile() { echo "$RUN_DIR/pids/$1.pid"; }
logfile() { echo "$RUN_DIR/logs/$1.log"; }
node_pid() { local f; f=$(pidfile "$1"); if [[ -f "$f" ]]; then cat "$f"; fi; }

# running <node>: pid file names a live process that carries our marker for this run dir
running() {
  local pid; pid=$(node_pid "$1")
  [[ -n "$pid" ]] && alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-Dfabric.kafka.node=$1 -Dfabric.kafka.run=$RUN_DIR "
}

port_in_use() { # port_in_use <node> <port>
  # shellcheck disable=SC2046
  $(ns_argv ctl) timeout 2 bash -c "exec 3<>/dev/tcp/$(host_of "$1")/$2" 2>/dev/null
}

launch() { # launch <node> <heap> <extra-jvm-opts-string> <main> args...
  local node="$1" heap="$2" extra="$3"; shift 3
  local pf lf; pf=$(pidfile "$node"); lf=$(logfile "$node")
  mkdir -p "$RUN_DIR/pids" "$RUN_DIR/logs"
  rm -f "$pf"
  echo "===== $(date '+%F %T') starting $node =====" >>"$lf"
  # shellcheck disable=SC2086
  # the child closes every fd above 2 first: it must not inherit (and hold) kafka.sh's flock fds
  setsid bash -c 'echo $$ >"$0"
    for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
    exec "$@"' "$pf" $(ns_argv "$node") \
    "$JAVA" -Dfabric.kafka.node="$node" -Dfabric.kafka.run="$RUN_DIR" \
    -Xms64m -Xmx"$heap" "${COMMON_JVM_OPTS[@]}" $extra \
    -Dlog4j.configuration="file:$SCRIPT_DIR/log4j.properties" -Dkafka.logs.dir="$RUN_DIR/logs" \
    -cp "$(classpath)" "$@" >>"$lf" 2>&1 </dev/null &
  local i
  for i in $(seq 1 50); do [[ -s "$pf" ]] && break; sleep 0.1; done
  [[ -s "$pf" ]] || die "$node did not start (see $lf)"
  log "started $node (pid $(cat "$pf"), log $lf)"
}

stop_node() { # stop_node <node> <TERM|KILL> [timeout for TERM, default KAFKA_STOP_TIMEOUT]
  local node="$1" sig="$2" term_timeout="${3:-$KAFKA_STOP_TIMEOUT}" pid
  if ! running "$node"; then log "$node is not running"; rm -f "$(pidfile "$node")"; return 0; fi
  pid=$(node_pid "$node")
  local t0; t0=$(now)
  kill -s "$sig" "$pid" 2>/dev/null || true
  kill -s CONT "$pid" 2>/dev/null || true # a paused node (pause-broker) must see the signal
  local deadline
  if [[ "$sig" == KILL ]]; then deadline=$((SECONDS + 15)); else deadline=$((SECONDS + term_timeout)); fi
  while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if alive "$pid"; then
    log "$node (pid $pid) still alive after SIG$sig; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 15))
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    alive "$pid" && die "could not kill $node (pid $pid)"
  fi
  rm -f "$(pidfile "$node")"
  log "stopped $node (pid $pid, SIG$sig, $(elapsed "$t0") s)"
}

# alive <pid>: exists and is not a zombie waiting to be reaped
alive() { kill -0 "$1" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }

rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

signal_node() { # signal_node <node> <STOP|CONT>: freeze or thaw a node (fault injection)
  local node="$1" sig="$2" pid
  running "$node" || die "$node is not running"
  pid=$(node_pid "$node")
  kill -s "$sig" "$pid" || die "kill -$sig $node (pid $pid) failed"
  log "sent SIG$sig to $node (pid $pid)"
}

# ---------------------------------------------------------------------------- ZooKeeper -----
zk_cmd() { # zk_cmd <id> <4lw>   (Java-free: bash /dev/tcp)
  # shellcheck disable=SC2046
  $(ns_argv ctl) timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "%s" "$2" >&3 && cat <&3' \
    "$(host_of "zk$1")" "$(zk_port "$1")" "$2" 2>/dev/null || true
}
zk_mode() { zk_cmd "$1" srvr | sed -n 's/^Mode: //p'; }

zk_quorum_ok() { # a leader and a majority of servers serving
  local i m serving=0 leader=0
  for i in $(seq 1 "$KAFKA_NUM_ZK"); do
    m=$(zk_mode "$i")
    case "$m" in leader) leader=1; serving=$((serving + 1));; follower) serving=$((serving + 1));; esac
  done
  ((leader == 1 && serving * 2 > KAFKA_NUM_ZK))
}

wait_zk_quorum() {
  local t0; t0=$(now)
  local deadline=$((SECONDS + KAFKA_ZK_WAIT_TIMEOUT))
  until zk_quorum_ok; do
    if ((SECONDS >= deadline)); then
      local i; for i in $(seq 1 "$KAFKA_NUM_ZK"); do log "zk$i: $(zk_mode "$i" || true)"; done
      die "ZooKeeper ensemble has no quorum after ${KAFKA_ZK_WAIT_TIMEOUT}s (logs: $RUN_DIR/logs/zk*.log)"
    fi
    sleep 0.5
  done
  log "ZooKeeper quorum up ($(elapsed "$t0") s)"
}

# is /brokers/ids/<id> still an ephemeral znode (e.g. right after kill -9)? Uses the 'dump' 4lw.
zk_broker_registered() {
  local i out
  for i in $(seq 1 "$KAFKA_NUM_ZK"); do
    out=$(zk_cmd "$i" dump)
    if grep -q "^Sessions with Ephemerals" <<<"$out"; then
      grep -qE "^[[:space:]]*/brokers/ids/$1\$" <<<"$out" && return 0 || return 1
    fi
  done
  return 1
}

write_zk_conf() {
  local n="$1" i
  mkdir -p "$RUN_DIR/data/zk$n" "$RUN_DIR/conf"
  echo "$n" >"$RUN_DIR/data/zk$n/myid"
  {
    echo "tickTime=1000"
    echo "initLimit=10"
    echo "syncLimit=5"
    echo "dataDir=$RUN_DIR/data/zk$n"
    echo "clientPort=$(zk_port "$n")"
    echo "clientPortAddress=$(host_of "zk$n")"
    echo "admin.enableServer=false"
    echo "4lw.commands.whitelist=ruok,srvr,stat,mntr,dump"
    echo "maxClientCnxns=0"
    echo "minSessionTimeout=2000"
    echo "maxSessionTimeout=60000"
    echo "autopurge.purgeInterval=0"
    for i in $(seq 1 "$KAFKA_NUM_ZK"); do
      echo "server.$i=$(host_of "zk$i"):$((KAFKA_ZK_PEER_PORT_BASE + i - 1)):$((KAFKA_ZK_ELECTION_PORT_BASE + i - 1))"
    done
  } >"$RUN_DIR/conf/zk$n.cfg"
}

start_zk_node() {
  local n="$1"
  running "zk$n" && { log "zk$n already running (pid $(node_pid "zk$n"))"; return 0; }
  port_in_use "zk$n" "$(zk_port "$n")" && die "port $(zk_port "$n") (zk$n) is in use by another process"
  [[ -f "$RUN_DIR/conf/zk$n.cfg" ]] || write_zk_conf "$n"
  date +%s.%N >"$RUN_DIR/started.at"
  launch "zk$n" "$KAFKA_ZK_HEAP" "${KAFKA_ZK_JVM_OPTS:-} ${KAFKA_JVM_OPTS:-} -Dzookeeper.jmx.log4j.disable=true" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$RUN_DIR/conf/zk$n.cfg"
}

# ------------------------------------------------------------------------------ brokers -----
write_broker_conf() {
  local n="$1" i
  mkdir -p "$RUN_DIR/data/broker$n" "$RUN_DIR/conf"
  {
    echo "# generated by kafka.sh ($KAFKA_MODE mode)"
    if [[ "$KAFKA_MODE" == zk ]]; then
      echo "broker.id=$n"
      echo "listeners=PLAINTEXT://$(host_of "broker$n"):$(broker_port "$n")$(extra_listeners "$n")"
      echo "zookeeper.connect=$(zk_connect)"
      echo "zookeeper.session.timeout.ms=$KAFKA_ZK_SESSION_TIMEOUT_MS"
      echo "zookeeper.connection.timeout.ms=30000"
    else
      echo "node.id=$n"
      if ((n <= KAFKA_NUM_CONTROLLERS)); then
        echo "process.roles=broker,controller"
        echo "listeners=PLAINTEXT://$(host_of "broker$n"):$(broker_port "$n")$(extra_listeners "$n"),CONTROLLER://$(host_of "broker$n"):$(controller_port "$n")"
      else
        echo "process.roles=broker"
        echo "listeners=PLAINTEXT://$(host_of "broker$n"):$(broker_port "$n")$(extra_listeners "$n")"
      fi
      echo "controller.quorum.voters=$(controller_voters)"
      echo "controller.listener.names=CONTROLLER"
      echo "inter.broker.listener.name=PLAINTEXT"
      echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL"
      echo "broker.session.timeout.ms=$KAFKA_ZK_SESSION_TIMEOUT_MS"
      echo "broker.heartbeat.interval.ms=1000"
    fi
    echo "advertised.listeners=PLAINTEXT://$(host_of "broker$n"):$(broker_port "$n")$(extra_listeners "$n")"
    echo "log.dirs=$RUN_DIR/data/broker$n"
    if tls_on; then write_broker_tls_conf; fi
    cat <<EOF
# --- Fabric Kafka guide (docs/source/kafka.rst): K=4 brokers, Z=3, N=3, M=2 ---
default.replication.factor=$KAFKA_REPLICATION_FACTOR
min.insync.replicas=$KAFKA_MIN_ISR
unclean.leader.election.enable=$KAFKA_UNCLEAN_LEADER_ELECTION
log.retention.ms=-1
log.retention.bytes=-1
# must exceed the channel's Orderer.BatchSize.AbsoluteMaxBytes (+ record overhead)
message.max.bytes=$KAFKA_MESSAGE_MAX_BYTES
replica.fetch.max.bytes=$KAFKA_MESSAGE_MAX_BYTES
replica.fetch.response.max.bytes=$KAFKA_MESSAGE_MAX_BYTES
socket.request.max.bytes=$KAFKA_SOCKET_REQUEST_MAX_BYTES
auto.create.topics.enable=true
delete.topic.enable=true
num.partitions=1
# --- internal topics: replicated like everything else, but tiny ---
offsets.topic.replication.factor=$KAFKA_REPLICATION_FACTOR
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=$KAFKA_REPLICATION_FACTOR
transaction.state.log.min.isr=$KAFKA_MIN_ISR
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
# --- light on a 2-core machine, quick failure detection for tests ---
num.network.threads=2
num.io.threads=2
background.threads=2
num.replica.fetchers=1
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
replica.lag.time.max.ms=10000
controlled.shutdown.enable=true
controlled.shutdown.max.retries=2
controlled.shutdown.retry.backoff.ms=1000
leader.imbalance.check.interval.seconds=30
EOF
  } >"$RUN_DIR/conf/broker$n.properties"
}

# ----------------------------------------------------------------------------------- TLS -----
# <run dir>/tls: a CA (ca.pem), the brokers' server certificate for 127.0.0.1/localhost
# (broker.p12, PKCS12), a client certificate the orderer presents (client.pem, client.key:
# both listeners require one, as Fabric's Kafka.TLS always sends one), another CA that signed
# nothing the brokers trust (other-ca.pem, for negative tests), and the SASL/PLAIN
# credentials (sasl.user, sasl.password).
make_tls() {
  local d; d=$(tls_dir)
  [[ -f "$d/.complete" ]] && return 0
  command -v openssl >/dev/null || die "openssl not found (needed for the TLS listeners; or KAFKA_TLS=0)"
  rm -rf "$d.tmp"; mkdir -p "$d.tmp"
  (
    set -e
    cd "$d.tmp"
    ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    ca() { # ca <name> <cn>
      ec "$1.key"
      openssl req -x509 -new -key "$1.key" -sha256 -days 3650 -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$1.pem"
    }
    leaf() { # leaf <name> <extensions>
      ec "$1.key"
      openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
      printf '%s\n' "$2" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    ca ca kafka-test-ca
    ca other-ca untrusted-test-ca
    san="IP:127.0.0.1,DNS:localhost,IP:$KAFKA_HOST"
    if netns_on; then for n in $(broker_ids); do san+=",IP:$(host_of "broker$n")"; done; fi
    leaf broker "subjectAltName=$san
extendedKeyUsage=serverAuth,clientAuth"
    leaf client "extendedKeyUsage=clientAuth"
    openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem -name broker \
      -passout pass:kafka-test -out broker.p12
    printf '%s' "$KAFKA_SASL_USER" >sasl.user
    printf '%s' "$KAFKA_SASL_PASSWORD" >sasl.password
    chmod 600 ./*.key sasl.password
  ) || die "making the TLS material in $d failed"
  touch "$d.tmp/.complete"
  rm -rf "$d"; mv "$d.tmp" "$d"
  log "made a test CA and certificates in $d"
}

write_broker_tls_conf() {
  local d; d=$(tls_dir)
  cat <<EOF
# --- TLS (SSL and SASL_SSL listeners; client certificates required) ---
ssl.keystore.type=PKCS12
ssl.keystore.location=$d/broker.p12
ssl.keystore.password=kafka-test
ssl.key.password=kafka-test
ssl.truststore.type=PEM
ssl.truststore.location=$d/ca.pem
ssl.client.auth=required
ssl.enabled.protocols=TLSv1.2,TLSv1.3
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$KAFKA_SASL_PASSWORD";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
}

kraft_format() { # format every broker's log dir that is not formatted yet (parallel JVMs)
  local n pids=() cid
  if [[ ! -f "$RUN_DIR/cluster.id" ]]; then
    # same shape as `kafka-storage.sh random-uuid` (16 random bytes, URL-safe base64, no padding;
    # Kafka never hands out ids starting with '-'), without paying for a JVM
    for _ in 1 2 3 4 5 6 7 8; do
      cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)
      [[ "$cid" != -* ]] && break
    done
    echo "$cid" >"$RUN_DIR/cluster.id"
  fi
  cid=$(cat "$RUN_DIR/cluster.id")
  [[ "$cid" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "bad KRaft cluster id '$cid'"
  for n in $(broker_ids); do
    [[ -f "$RUN_DIR/data/broker$n/meta.properties" ]] && continue
    run_tool kafka.tools.StorageTool format -t "$cid" -c "$RUN_DIR/conf/broker$n.properties" \
      >"$RUN_DIR/logs/format-broker$n.log" 2>&1 &
    pids+=($!)
  done
  local ok=1 p
  for p in "${pids[@]}"; do wait "$p" || ok=0; done
  ((ok)) || { cat "$RUN_DIR"/logs/format-broker*.log >&2; die "kafka.tools.StorageTool format failed"; }
  ((${#pids[@]} == 0)) || log "formatted ${#pids[@]} KRaft log dir(s), cluster id $cid"
}

start_broker_node() {
  local n="$1"
  running "broker$n" && { log "broker$n already running (pid $(node_pid "broker$n"))"; return 0; }
  port_in_use "broker$n" "$(broker_port "$n")" && die "port $(broker_port "$n") (broker$n) is in use by another process"
  if [[ "$KAFKA_MODE" == kraft ]] && ((n <= KAFKA_NUM_CONTROLLERS)); then
    port_in_use "broker$n" "$(controller_port "$n")" && die "port $(controller_port "$n") (controller $n) is in use"
  fi
  [[ -f "$RUN_DIR/conf/broker$n.properties" ]] || write_broker_conf "$n"
  if [[ "$KAFKA_MODE" == kraft ]]; then
    [[ -f "$RUN_DIR/data/broker$n/meta.properties" ]] || kraft_format
  else
    # after kill -9 the old ZK session (and /brokers/ids/N) lives on until it expires;
    # a broker started before that fails with NodeExists, so wait for it to go.
    local deadline=$((SECONDS + KAFKA_ZK_SESSION_TIMEOUT_MS / 1000 + 20))
    if zk_broker_registered "$n"; then
      log "waiting for the old ZooKeeper registration of broker $n to expire ..."
      while zk_broker_registered "$n"; do
        ((SECONDS < deadline)) || die "/brokers/ids/$n is still registered in ZooKeeper; is another broker $n running?"
        sleep 0.5
      done
    fi
  fi
  date +%s.%N >"$RUN_DIR/started.at"
  launch "broker$n" "$KAFKA_BROKER_HEAP" "${KAFKA_BROKER_JVM_OPTS:-} ${KAFKA_JVM_OPTS:-}" \
    kafka.Kafka "$RUN_DIR/conf/broker$n.properties"
}

# ------------------------------------------------------------------------------ commands -----
check_run_dir_is_ours() {
  [[ -n "$RUN_DIR" && "$RUN_DIR" != / ]] || die "refusing run dir '$RUN_DIR'"
  if [[ -d "$RUN_DIR" && ! -f "$MARKER" ]] && [[ -n "$(ls -A "$RUN_DIR" 2>/dev/null)" ]]; then
    die "$RUN_DIR exists, is not empty and was not created by kafka.sh; set KAFKA_RUN_DIR"
  fi
}

need_cluster() {
  [[ -f "$CLUSTER_ENV" ]] || die "no cluster in $RUN_DIR (run: kafka.sh start)"
}

cmd_start() {
  local mode=zk do_wait=0 a
  for a in "$@"; do
    case "$a" in
      --kraft) mode=kraft;; --zk) mode=zk;; --wait) do_wait=1;;
      *) die "start: unknown option '$a'";;
    esac
  done
  check_run_dir_is_ours
  local fresh=0
  if [[ -f "$CLUSTER_ENV" ]]; then
    [[ "$KAFKA_MODE" == "$mode" ]] || die "$RUN_DIR holds a '$KAFKA_MODE' cluster; run 'kafka.sh down' first"
    log "re-using $RUN_DIR ($KAFKA_MODE mode); starting the nodes that are not running"
  else
    fresh=1
    KAFKA_MODE="$mode"; set_shape_defaults
    local v
    for v in KAFKA_NUM_BROKERS KAFKA_NUM_ZK KAFKA_NUM_CONTROLLERS KAFKA_BROKER_PORT_BASE KAFKA_CONTROLLER_PORT_BASE \
             KAFKA_ZK_PORT_BASE KAFKA_ZK_PEER_PORT_BASE KAFKA_ZK_ELECTION_PORT_BASE; do
      is_uint "${!v}" && ((${!v} >= 1)) || die "$v must be a positive integer, got '${!v}'"
    done
    if [[ "$mode" == kraft ]] && ((KAFKA_NUM_CONTROLLERS > KAFKA_NUM_BROKERS)); then
      die "KAFKA_NUM_CONTROLLERS ($KAFKA_NUM_CONTROLLERS) > KAFKA_NUM_BROKERS ($KAFKA_NUM_BROKERS)"
    fi
  fi
  ensure_fetched
  netns_up
  local t0; t0=$(now)
  local n busy=()
  # check every port before launching anything, so a clash leaves no half-started cluster
  for n in $(zk_ids); do
    running "zk$n" || ! port_in_use "zk$n" "$(zk_port "$n")" || busy+=("$(zk_port "$n") (zk$n)")
  done
  for n in $(broker_ids); do
    running "broker$n" && continue
    port_in_use "broker$n" "$(broker_port "$n")" && busy+=("$(broker_port "$n") (broker$n)")
    if tls_on; then
      port_in_use "broker$n" "$(ssl_port "$n")" && busy+=("$(ssl_port "$n") (broker$n SSL)")
      port_in_use "broker$n" "$(sasl_ssl_port "$n")" && busy+=("$(sasl_ssl_port "$n") (broker$n SASL_SSL)")
    fi
    if [[ "$KAFKA_MODE" == kraft ]] && ((n <= KAFKA_NUM_CONTROLLERS)) && port_in_use "broker$n" "$(controller_port "$n")"; then
      busy+=("$(controller_port "$n") (controller $n)")
    fi
  done
  ((${#busy[@]} == 0)) || die "port(s) in use by other processes: ${busy[*]}; pick other KAFKA_*_PORT_BASE values"
  if ((fresh)); then # freeze the shape: later commands on this run dir use these values
    mkdir -p "$RUN_DIR"/{conf,data,logs,pids}
    touch "$MARKER"
    { for v in "${SHAPE_VARS[@]}"; do printf '%s=%q\n' "$v" "${!v}"; done
      printf 'KAFKA_CACHE_FROZEN=%q\n' "$KAFKA_CACHE"; } >"$CLUSTER_ENV"
  fi
  if [[ "$KAFKA_MODE" == zk ]]; then
    for n in $(zk_ids); do start_zk_node "$n"; done
    wait_zk_quorum
  fi
  if tls_on; then make_tls; fi
  for n in $(broker_ids); do [[ -f "$RUN_DIR/conf/broker$n.properties" ]] || write_broker_conf "$n"; done
  [[ "$KAFKA_MODE" == kraft ]] && kraft_format
  for n in $(broker_ids); do start_broker_node "$n"; done
  log "cluster ($KAFKA_MODE) launched in $(elapsed "$t0") s; bootstrap: $(bootstrap_list)"
  ((do_wait)) && cmd_wait
  return 0
}

cmd_wait() {
  local timeout="$KAFKA_WAIT_TIMEOUT"
  while (($#)); do
    case "$1" in
      --timeout) timeout="${2:-}"; shift 2 || shift;;
      --timeout=*) timeout="${1#*=}"; shift;;
      *) die "wait: unknown option '$1'";;
    esac
  done
  is_uint "$timeout" || die "wait: timeout must be whole seconds, got '$timeout'"
  need_cluster
  ensure_fetched
  local n ids=() addrs=() procs=() stopped=()
  for n in $(broker_ids); do
    if running "broker$n"; then
      ids+=("$n"); addrs+=("$(host_of "broker$n"):$(broker_port "$n")"); procs+=("broker$n=$(node_pid "broker$n")")
    else
      stopped+=("$n")
    fi
  done
  ((${#ids[@]} > 0)) || die "no broker process is running (kafka.sh status)"
  ((${#stopped[@]} == 0)) || log "note: broker(s) ${stopped[*]} not running; waiting for brokers ${ids[*]} only"
  local t0; t0=$(now) rc=0
  if [[ -f "$HELPER_DIR/ReadyCheck.class" && "${KAFKA_WAIT_METHOD:-}" != apiversions ]]; then
    # shellcheck disable=SC2046
    $(ns_argv ctl) timeout "$((timeout + 30))" "$JAVA" "${TOOL_JVM_OPTS[@]}" -Dlog4j.configuration="file:$SCRIPT_DIR/tools-log4j.properties" \
      -cp "$HELPER_DIR:$(classpath)" ReadyCheck "$timeout" "$(IFS=,; echo "${addrs[*]}")" \
      "$(IFS=,; echo "${ids[*]}")" "${procs[@]}" || rc=$?
  else
    wait_fallback "$timeout" "${ids[*]}" "$(IFS=,; echo "${addrs[*]}")" || rc=$?
  fi
  if ((rc != 0)); then
    for n in $(broker_ids); do
      running "broker$n" || { log "broker$n is NOT running; last log lines:"; tail -n 15 "$(logfile "broker$n")" >&2 || true; }
    done
    die "cluster not ready within ${timeout}s (kafka.sh status; logs in $RUN_DIR/logs)"
  fi
  if [[ -f "$RUN_DIR/started.at" ]]; then
    log "ready $(elapsed "$(cat "$RUN_DIR/started.at")") s after the last node was started"
  fi
}

wait_fallback() { # without javac: BrokerApiVersionsCommand lists every broker it could reach
  local fb_timeout="$1" fb_ids="$2" fb_addrs="$3" deadline out missing i
  deadline=$((SECONDS + fb_timeout))
  while :; do
    # shellcheck disable=SC2046
    out=$($(ns_argv ctl) timeout 30 "$JAVA" "${TOOL_JVM_OPTS[@]}" -Dlog4j.configuration="file:$SCRIPT_DIR/tools-log4j.properties" \
      -cp "$(classpath)" kafka.admin.BrokerApiVersionsCommand --bootstrap-server "$fb_addrs" 2>/dev/null || true)
    missing=""
    for i in $fb_ids; do grep -q "(id: $i rack:" <<<"$out" || missing+=" $i"; done
    [[ -z "$missing" ]] && { echo "ready: brokers $fb_ids answer ApiVersions"; return 0; }
    ((SECONDS < deadline)) || { log "TIMEOUT: brokers not answering:$missing"; return 1; }
    sleep 1
  done
}

parse_n() { # parse_n <kind> <N> <max>
  is_uint "${2:-}" && (($2 >= 1 && $2 <= $3)) || die "$1 number must be 1..$3"
}

cmd_status() {
  if [[ ! -f "$CLUSTER_ENV" ]]; then echo "no cluster in $RUN_DIR"; return 0; fi
  local n pid rss total=0 state extra
  echo "mode: $KAFKA_MODE   run dir: $RUN_DIR   kafka: $KAFKA_VERSION"
  printf '%-9s %-8s %-8s %-22s %s\n' NODE STATE PID ADDRESS RSS_MB
  for n in $(zk_ids); do
    if running "zk$n"; then
      pid=$(node_pid "zk$n"); rss=$(rss_kb "$pid"); total=$((total + rss))
      state="up"; extra=$(zk_mode "$n"); [[ -n "$extra" ]] && state="$extra"
    else pid="-"; rss=0; state="down"; fi
    printf '%-9s %-8s %-8s %-22s %s\n' "zk$n" "$state" "$pid" "$(host_of "zk$n"):$(zk_port "$n")" $((rss / 1024))
  done
  for n in $(broker_ids); do
    if running "broker$n"; then
      pid=$(node_pid "broker$n"); rss=$(rss_kb "$pid"); total=$((total + rss)); state=up
      port_in_use "broker$n" "$(broker_port "$n")" || state=starting
    else pid="-"; rss=0; state=down; fi
    extra=""
    [[ "$KAFKA_MODE" == kraft ]] && ((n <= KAFKA_NUM_CONTROLLERS)) && extra=" (+controller :$(controller_port "$n"))"
    printf '%-9s %-8s %-8s %-22s %s%s\n' "broker$n" "$state" "$pid" "$(host_of "broker$n"):$(broker_port "$n")" $((rss / 1024)) "$extra"
  done
  echo "total RSS: $((total / 1024)) MB"
  echo "bootstrap: $(bootstrap_list)"
}

cmd_stop_all() { # stop every node, keeping data (brokers first, then ZK)
  # All brokers get SIGTERM at once. The last ones cannot finish a controlled shutdown (no
  # controller quorum left in KRaft combined mode), so they get SIGKILL after a short grace time.
  local n grace="${KAFKA_STOP_ALL_TIMEOUT:-15}"
  need_cluster
  for n in $(broker_ids); do running "broker$n" && { kill -TERM "$(node_pid "broker$n")" 2>/dev/null || true; }; done
  for n in $(broker_ids); do stop_node "broker$n" TERM "$grace"; done
  for n in $(zk_ids); do stop_node "zk$n" TERM "$grace"; done
}

cmd_down() {
  check_run_dir_is_ours
  local f node pid
  if [[ -d "$RUN_DIR/pids" ]]; then
    for f in "$RUN_DIR"/pids/*.pid; do
      [[ -e "$f" ]] || continue
      node=$(basename "$f" .pid)
      if running "$node"; then pid=$(node_pid "$node"); kill -KILL "$pid" 2>/dev/null || true; fi
    done
    for f in "$RUN_DIR"/pids/*.pid; do
      [[ -e "$f" ]] || continue
      node=$(basename "$f" .pid)
      stop_node "$node" KILL >/dev/null 2>&1 || true
    done
  fi
  if netns_on; then # the namespaces go too, unless other processes (e.g. OSNs) still run in them
    netfault down || log "kept the network namespaces of '$KAFKA_NETNS' (scripts/netfault/netfault.py --prefix $KAFKA_NETNS down)"
  fi
  if [[ -d "$RUN_DIR" ]]; then rm -rf -- "$RUN_DIR"; log "cluster down, removed $RUN_DIR"; else log "nothing in $RUN_DIR"; fi
}

cmd_smoke() { # quick end-to-end check against the running cluster
  need_cluster
  local topic bs out leader t0 victim
  topic="smoke-$(date +%s)"
  bs=$(bootstrap_list)
  t0=$(now)
  log "smoke: creating topic $topic (1 partition, RF $KAFKA_REPLICATION_FACTOR, min.insync.replicas $KAFKA_MIN_ISR)"
  timeout 120 "$SELF" run-class org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --create --topic "$topic" \
    --partitions 1 --replication-factor "$KAFKA_REPLICATION_FACTOR" --config "min.insync.replicas=$KAFKA_MIN_ISR"
  out=$(timeout 120 "$SELF" run-class org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --describe --topic "$topic")
  echo "$out"
  leader=$(sed -n 's/.*Leader: \([0-9]*\).*/\1/p' <<<"$out" | head -n1)
  is_uint "$leader" || die "smoke: could not find the partition leader"
  produce() { # produce <value>  (acks=all + --sync: ConsoleProducer exits 1 if the send is not acknowledged)
    printf '%s\n' "$1" | timeout 120 "$SELF" run-class kafka.tools.ConsoleProducer --bootstrap-server "$bs" --topic "$topic" \
      --sync --request-required-acks all --request-timeout-ms 10000 \
      --producer-property delivery.timeout.ms=30000 --producer-property linger.ms=0 \
      --producer-property max.request.size="$KAFKA_MESSAGE_MAX_BYTES"
  }
  consume() { # consume <n>
    timeout 120 "$SELF" run-class org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$bs" \
      --topic "$topic" --partition 0 --offset earliest --max-messages "$1" --timeout-ms 30000 \
      --property print.offset=true
  }
  produce "hello-1" || die "smoke: produce with acks=all failed"
  out=$(consume 1); echo "$out"
  grep -q "hello-1" <<<"$out" || die "smoke: did not consume hello-1"
  victim="$leader"
  log "smoke: stopping broker $victim (leader of $topic-0) and producing with acks=all"
  "$SELF" stop-broker "$victim"
  produce "hello-2 (broker $victim down)" || die "smoke: acks=all produce failed with one broker down"
  timeout 120 "$SELF" run-class org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --describe --topic "$topic"
  out=$(consume 2); echo "$out"
  grep -q "hello-2" <<<"$out" || die "smoke: did not consume hello-2"
  log "smoke: restarting broker $victim"
  "$SELF" start-broker "$victim"
  "$SELF" wait
  log "smoke: OK in $(elapsed "$t0") s"
}

usage() {
  cat <<EOF
usage: kafka.sh <command> [args]

  fetch                   download Kafka $KAFKA_VERSION + deps from Maven Central into the cache (idempotent)
  start [--kraft] [--wait] start 3 ZK + 4 brokers (or a KRaft cluster) on $KAFKA_HOST; re-running starts missing nodes
  wait [--timeout S]      wait until every running broker is registered and serving (default ${KAFKA_WAIT_TIMEOUT}s)
  brokers [--ssl|--sasl-ssl] print the bootstrap list (PLAINTEXT, SSL or SASL_SSL listeners)
  tls-dir                 print the dir with ca.pem, client.pem/.key, other-ca.pem, sasl.user/.password
  status                  nodes, pids, RSS
  stop-broker N           graceful stop (SIGTERM, controlled shutdown), data kept
  kill-broker N           kill -9, data kept
  pause-broker N | resume-broker N      SIGSTOP / SIGCONT broker N (a hung broker, for fault tests)
  start-broker N          start broker N again with its data
  stop-zk N | kill-zk N | start-zk N    same for ZooKeeper server N (ZK mode)
  pause-zk N | resume-zk N              SIGSTOP / SIGCONT ZooKeeper server N
  stop                    stop all nodes gracefully, keep the run dir
  down                    kill all nodes and remove the run dir
  smoke                   topic RF 3 + produce/consume + acks=all produce with one broker down
  scram-user USER PASSWORD  SCRAM-SHA-256/512 credentials for USER (SASL_SSL listeners)
  run-class MAIN [args]   run a Kafka/ZooKeeper main class with the cluster's classpath
  classpath               print the classpath

env: KAFKA_VERSION=$KAFKA_VERSION KAFKA_CACHE=$KAFKA_CACHE
     KAFKA_RUN_DIR=$KAFKA_RUN_DIR KAFKA_BROKER_PORT_BASE=${KAFKA_BROKER_PORT_BASE:-29092}
     KAFKA_ZK_PORT_BASE=${KAFKA_ZK_PORT_BASE:-22181} KAFKA_CONTROLLER_PORT_BASE=${KAFKA_CONTROLLER_PORT_BASE:-29192}
     (more in scripts/kafka/README.md)
EOF
}

# SCRAM-SHA-256 and SCRAM-SHA-512 credentials for USER (the SASL_SSL
# listeners accept them besides PLAIN), set through the PLAINTEXT listener.
scram_user() {
  local user=$1 password=$2
  run_tool kafka.admin.ConfigCommand --bootstrap-server "$(bootstrap_list)" --alter \
    --add-config "SCRAM-SHA-256=[password=$password],SCRAM-SHA-512=[password=$password]" \
    --entity-type users --entity-name "$user" >/dev/null \
    || die "could not set the SCRAM credentials of $user"
  log "SCRAM-SHA-256/512 credentials set for $user"
}

main() {
  local cmd="${1:-help}"; shift || true
  load_cluster_env
  refresh_cache_paths
  local runlock="${RUN_DIR%/}.lock"
  case "$cmd" in
    fetch) with_lock "$KAFKA_CACHE.lock" do_fetch; log "Kafka $KAFKA_VERSION ready in $LIBS_DIR" ;;
    start) with_lock "$runlock" cmd_start "$@" ;;
    wait) cmd_wait "$@" ;;
    brokers) bootstrap_list "$@" ;;
    tls-dir) need_cluster; tls_on || die "this cluster has no TLS listeners (KAFKA_TLS=0)"; tls_dir ;;
    status) cmd_status ;;
    stop-broker|kill-broker|start-broker)
      need_cluster; parse_n broker "${1:-}" "$KAFKA_NUM_BROKERS"
      case "$cmd" in
        stop-broker) with_lock "$runlock" stop_node "broker$1" TERM ;;
        kill-broker) with_lock "$runlock" stop_node "broker$1" KILL ;;
        start-broker) ensure_fetched; with_lock "$runlock" start_broker_node "$1" ;;
      esac ;;
    pause-broker|resume-broker)
      need_cluster; parse_n broker "${1:-}" "$KAFKA_NUM_BROKERS"
      if [[ "$cmd" == pause-broker ]]; then signal_node "broker$1" STOP; else signal_node "broker$1" CONT; fi ;;
    pause-zk|resume-zk)
      need_cluster; [[ "$KAFKA_MODE" == zk ]] || die "no ZooKeeper in $KAFKA_MODE mode"
      parse_n zk "${1:-}" "$KAFKA_NUM_ZK"
      if [[ "$cmd" == pause-zk ]]; then signal_node "zk$1" STOP; else signal_node "zk$1" CONT; fi ;;
    stop-zk|kill-zk|start-zk)
      need_cluster; [[ "$KAFKA_MODE" == zk ]] || die "no ZooKeeper in $KAFKA_MODE mode"
      parse_n zk "${1:-}" "$KAFKA_NUM_ZK"
      case "$cmd" in
        stop-zk) with_lock "$runlock" stop_node "zk$1" TERM ;;
        kill-zk) with_lock "$runlock" stop_node "zk$1" KILL ;;
        start-zk) ensure_fetched; with_lock "$runlock" start_zk_node "$1" ;;
      esac ;;
    stop) with_lock "$runlock" cmd_stop_all ;;
    down) with_lock "$runlock" cmd_down ;;
    smoke) cmd_smoke ;;
    run-class) (($#)) || die "run-class needs a main class"; run_tool "$@" ;;
    scram-user) (($# == 2)) || die "scram-user needs USER PASSWORD"; scram_user "$@" ;;
    classpath) ensure_fetched; classpath ;;
    help|-h|--help) usage ;;
    *) usage >&2; die "unknown command '$cmd'" ;;
  esac
}

main "$@"
