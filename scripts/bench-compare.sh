#!/usr/bin/env bash
# Benchmark (not a test): OUR orderer and Fabric's Go orderer (v2.5.16), in
# turn, in one run on this machine: the same Kafka cluster
# (scripts/kafka/kafka.sh), the same genesis block (one per consenter, made
# once by our configtxgen), the same channel-creation transactions, the same
# load generator (`orderer-client broadcast`, same signing identity, same
# envelope format and sizes; the same pre-signed envelopes, see below).
#
# For each case and orderer: sustained tx/s (SUCCESS responses ÷ time from
# the first send to the last response), broadcast→delivered latency
# p50/p99/p99.9, orderer CPU-seconds per 1,000 tx (utime+stime of the
# orderer process during the load, ÷ delivered tx), peak RSS (VmHWM), and
# ours ÷ Fabric's. It also measures one ECDSA P-256 verification (ring, one
# thread) and prints our CPU per tx as a multiple of it. It writes
# BENCHMARKS.md (table, machine, versions, load average, exact command)
# and the raw JSON.
#
#   scripts/bench-compare.sh [-d SECONDS] [-c CASES] [-w WINDOW] [-o FILE.md] [-j FILE.json] [--ours-only]
#
#   CASES  comma-separated CONSENTER:SIZE:STREAMS:CHANNELS:FOLLOWERS, or "all"
#          (the 48-case matrix: solo|kafka × 1024|3072 B × 1|16|128 streams ×
#          1|8 channels × 1|4 Deliver followers). SIZE is the envelope's
#          payload value size; STREAMS are split evenly over CHANNELS (one
#          load-generator process per channel, at least one stream each);
#          FOLLOWERS are Deliver followers per channel (the load generator's
#          own, plus FOLLOWERS-1 `orderer-client deliver` processes).
#          Default: the representative subset below.
#   WINDOW maximum unanswered envelopes per Broadcast stream (default 100).
#
# Envelopes are signed before the clock starts, once per (size, streams,
# channel), into a file that both orderers' runs read: the same bytes reach
# ours and Fabric's. The pool holds POOL_RATE (default 20000 up to 1 KB,
# 14000 above, solo ×1.5) × SECONDS envelopes per case; a run that sends
# them all ends early and says so.
#
# Environment: B_BIN (another build of our orderer, run in Fabric's place
# to A/B two builds of ours with the same envelopes), NO_BUILD=1 (use the release binaries as they are), OURS_BIN (our orderer binary, default the release build: to
# compare two builds of ours), FABRIC_BIN (Fabric's orderer, default
# ~/.cache/fabric-orderer-interop/bin/orderer), FABRIC_CFG (its sampleconfig),
# KAFKA_BROKERS (else the default cluster is used, started if not running).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CMDLINE="scripts/bench-compare.sh $*"

DURATION=60
WINDOW=100
POOL_RATE=${POOL_RATE:-}
CASES="kafka:1024:128:1:1,solo:1024:16:1:1,kafka:3072:128:1:1,kafka:1024:128:8:1,kafka:1024:16:1:4,kafka:1024:1:1:1"
OUT_MD=BENCHMARKS.md
OUT_JSON=
OURS_ONLY=
while [ $# -gt 0 ]; do
    case "$1" in
        -d) DURATION=$2; shift 2 ;;
        -c) CASES=$2; shift 2 ;;
        -w) WINDOW=$2; shift 2 ;;
        -o) OUT_MD=$2; shift 2 ;;
        -j) OUT_JSON=$2; shift 2 ;;
        --ours-only) OURS_ONLY=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ "$CASES" = all ]; then
    CASES=$(for k in solo kafka; do for s in 1024 3072; do for n in 1 16 128; do for c in 1 8; do for f in 1 4; do
        printf '%s:%s:%s:%s:%s,' $k $s $n $c $f; done; done; done; done; done)
    CASES=${CASES%,}
fi
OUT_JSON=${OUT_JSON:-${OUT_MD%.md}.json}

FABRIC_BIN=${FABRIC_BIN:-$HOME/.cache/fabric-orderer-interop/bin/orderer}
FABRIC_CFG=${FABRIC_CFG:-$HOME/.cache/fabric-orderer-interop/sampleconfig}
[ -n "$OURS_ONLY" ] || [ -n "${B_BIN:-}" ] || [ -x "$FABRIC_BIN" ] || { echo "Fabric's orderer not found at $FABRIC_BIN (set FABRIC_BIN or pass --ours-only)" >&2; exit 1; }

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release --bins -q
    cargo build --release -q -p fabric-common --example p256_verify
fi
BIN=$CARGO_TARGET_DIR/release
CLIENT=$BIN/orderer-client
OURS_BIN=${OURS_BIN:-$BIN/orderer}

WORK=$(mktemp -d /tmp/bench-compare.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

KAFKA=scripts/kafka/kafka.sh
if [ -z "${KAFKA_BROKERS:-}" ]; then
    $KAFKA fetch >/dev/null
    if ! $KAFKA wait --timeout 5 >/dev/null 2>&1; then
        $KAFKA start --wait >/dev/null
    fi
    KAFKA_BROKERS=$($KAFKA brokers)
fi

wait_port() { for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Pre-signed envelopes per channel: POOL_RATE (default 20000/s up to 1 KB,
# 14000/s above; solo ×1.5) × SECONDS, over the channels (twice that share
# with several channels, which do not progress evenly).
pool_of() { # size channels consenter
    local rate=${POOL_RATE:-}
    if [ -z "$rate" ]; then
        rate=20000; [ "$1" -gt 1024 ] && rate=14000
        [ "$3" = solo ] && rate=$((rate * 3 / 2))
    fi
    local spread=1; [ "$2" -gt 1 ] && spread=2
    echo $((rate * DURATION * spread / $2))
}
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# CPU ticks of every JVM on the machine (the Kafka brokers and ZooKeeper).
java_ticks() { local t=0 p; for p in $(pgrep -x java); do t=$((t + $(cpu_ticks "$p" 2>/dev/null || echo 0))); done; echo $t; }

# 1. Crypto material (SampleOrg: orderer, Admin, User1; NodeOUs), made by our
#    orderer's development network, then stopped.
P=$(free_port)
FABRIC_ORDERER_DEV_DIR="$WORK/dev" ORDERER_GENERAL_LISTENPORT=$P FABRIC_LOGGING_SPEC=warning \
    "$BIN/orderer" start >"$WORK/dev.log" 2>&1 &
DEVPID=$!
wait_port "$P" || { cat "$WORK/dev.log"; exit 1; }
kill "$DEVPID"; wait "$DEVPID" 2>/dev/null || true
ORG="$WORK/dev/crypto/ordererOrganizations/example.com"
ORDERER_MSP="$ORG/orderers/orderer.example.com/msp"
USER_MSP="$ORG/users/User1@example.com/msp"
ADMIN_MSP="$ORG/users/Admin@example.com/msp"

# 2. One genesis block per consenter, one channel-creation tx per extra channel.
SYS=benchsys
MAXCH=1
IFS=, read -ra CASE_LIST <<<"$CASES"
for c in "${CASE_LIST[@]}"; do IFS=: read -r _ _ _ ch _ <<<"$c"; [ "$ch" -gt "$MAXCH" ] && MAXCH=$ch; done
BROKER_LIST=$(echo "$KAFKA_BROKERS" | tr ',' '\n' | sed 's/^/                    - /')
profile() { # name ordererType
    cat <<YAML
    $1:
        Policies: *ChannelPolicies
        Capabilities: { V1_4_3: true }
        Orderer:
            <<: *OrdererDefaults
            OrdererType: $2
        Consortiums:
            SampleConsortium:
                Organizations: [*SampleOrg]
YAML
}
cat >"$WORK/configtx.yaml" <<YAML
Organizations:
    - &SampleOrg
        Name: SampleOrg
        ID: SampleOrg
        MSPDir: $ORG/msp
        Policies:
            Readers: { Type: Signature, Rule: "OR('SampleOrg.member')" }
            Writers: { Type: Signature, Rule: "OR('SampleOrg.member')" }
            Admins: { Type: Signature, Rule: "OR('SampleOrg.admin')" }
ChannelPolicies: &ChannelPolicies
    Readers: { Type: ImplicitMeta, Rule: "ANY Readers" }
    Writers: { Type: ImplicitMeta, Rule: "ANY Writers" }
    Admins: { Type: ImplicitMeta, Rule: "MAJORITY Admins" }
Orderer: &OrdererDefaults
    OrdererType: solo
    Addresses: [127.0.0.1:7050]
    BatchTimeout: 500ms
    BatchSize: { MaxMessageCount: 500, AbsoluteMaxBytes: 10 MB, PreferredMaxBytes: 2 MB }
    Kafka:
        Brokers:
$BROKER_LIST
    Organizations: [*SampleOrg]
    Policies:
        Readers: { Type: ImplicitMeta, Rule: "ANY Readers" }
        Writers: { Type: ImplicitMeta, Rule: "ANY Writers" }
        Admins: { Type: ImplicitMeta, Rule: "MAJORITY Admins" }
        BlockValidation: { Type: ImplicitMeta, Rule: "ANY Writers" }
    Capabilities: { V1_4_2: true }
Profiles:
$(profile BenchSolo solo)
$(profile BenchKafka kafka)
    BenchChannel:
        Consortium: SampleConsortium
        Policies: *ChannelPolicies
        Capabilities: { V1_4_3: true }
        Application:
            Organizations: [*SampleOrg]
            Policies:
                Readers: { Type: ImplicitMeta, Rule: "ANY Readers" }
                Writers: { Type: ImplicitMeta, Rule: "ANY Writers" }
                Admins: { Type: ImplicitMeta, Rule: "MAJORITY Admins" }
            Capabilities: { V1_4_2: true }
YAML
for k in solo kafka; do
    prof=BenchSolo; [ $k = kafka ] && prof=BenchKafka
    "$BIN/configtxgen" -configPath "$WORK" -profile $prof -channelID $SYS -outputBlock "$WORK/$k.block" 2>>"$WORK/configtxgen.log"
done
for i in $(seq 1 $((MAXCH - 1))); do
    "$BIN/configtxgen" -configPath "$WORK" -profile BenchChannel -channelID "benchch$i" \
        -outputCreateChannelTx "$WORK/benchch$i.tx" 2>>"$WORK/configtxgen.log"
done
channels_of() { echo $SYS; for i in $(seq 1 $(($1 - 1))); do echo "benchch$i"; done; }

# Kafka topics are named after channels: remove ours between runs so each
# orderer starts from empty topics.
delete_topics() {
    $KAFKA run-class org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" --delete \
        --topic "$SYS|benchch[0-9]+" --if-exists >/dev/null 2>&1 || true
    for _ in $(seq 60); do
        left=$($KAFKA run-class org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" --list 2>/dev/null \
            | grep -cE "^($SYS|benchch[0-9]+)\$" || true)
        [ "$left" = 0 ] && return 0
        sleep 1
    done
    echo "warning: topics still present after 60 s" >&2
}

# 3. One ECDSA P-256 verification, one thread.
VERIFY_JSON=$("$BIN/examples/p256_verify" 1024 4000)
echo "one ECDSA P-256 verify (ring, 1 KB, one thread): $VERIFY_JSON"

start_orderer() { # which consenter port ledger log → sets OPID
    local which=$1 k=$2 port=$3 ledger=$4 log=$5
    local common=(ORDERER_GENERAL_LISTENADDRESS=127.0.0.1 ORDERER_GENERAL_LISTENPORT="$port"
        ORDERER_GENERAL_BOOTSTRAPMETHOD=file ORDERER_GENERAL_BOOTSTRAPFILE="$WORK/$k.block"
        ORDERER_GENERAL_LOCALMSPDIR="$ORDERER_MSP" ORDERER_GENERAL_LOCALMSPID=SampleOrg
        ORDERER_FILELEDGER_LOCATION="$ledger" FABRIC_LOGGING_SPEC=warning
        ORDERER_OPERATIONS_LISTENADDRESS=127.0.0.1:0 ORDERER_ADMIN_LISTENADDRESS=127.0.0.1:0)
    if [ "$which" = ours ] || [ -n "${B_BIN:-}" ]; then
        local bin=$OURS_BIN
        [ "$which" = ours ] || bin=$B_BIN
        mkdir -p "$WORK/emptycfg"
        env "${common[@]}" FABRIC_CFG_PATH="$WORK/emptycfg" "$bin" start >"$log" 2>&1 &
    else
        env "${common[@]}" FABRIC_CFG_PATH="$FABRIC_CFG" ORDERER_KAFKA_VERSION=2.0.0 \
            ORDERER_KAFKA_TOPIC_REPLICATIONFACTOR=3 "$FABRIC_BIN" >"$log" 2>&1 &
    fi
    OPID=$!
    PIDS+=("$OPID")
}

client() { "$CLIENT" --server "127.0.0.1:$1" --mspdir "$USER_MSP" --mspid SampleOrg "${@:2}"; }

: >"$OUT_JSON.tmp"
LOADS=()
START_UTC=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for c in "${CASE_LIST[@]}"; do
    IFS=: read -r k size streams nch followers <<<"$c"
    for which in ours fabric; do
        [ "$which" = fabric ] && [ -n "$OURS_ONLY" ] && continue
        [ "$k" = kafka ] && delete_topics
        port=$(free_port)
        run="$WORK/run-$which-$k-$size-$streams-$nch-$followers"
        mkdir -p "$run"
        echo "== $which: $k, ${size} B, $streams streams, $nch channel(s), $followers follower(s), ${DURATION}s"
        start_orderer "$which" "$k" "$port" "$run/ledger" "$run/orderer.log"
        pid=$OPID
        wait_port "$port" || { tail -20 "$run/orderer.log"; exit 1; }
        ready=
        for _ in $(seq 240); do
            client "$port" --channel $SYS channel-info >/dev/null 2>&1 && { ready=1; break; }
            sleep 0.5
        done
        [ -n "$ready" ] || { echo "orderer not ready"; tail -20 "$run/orderer.log"; exit 1; }
        for ch in $(channels_of "$nch" | tail -n +2); do
            "$CLIENT" --server "127.0.0.1:$port" --mspdir "$ADMIN_MSP" --mspid SampleOrg --channel "$ch" \
                channel create -f "$WORK/$ch.tx" --output-block "$run/$ch.block" -t 120 >"$run/create-$ch.log" 2>&1 \
                || { echo "channel create $ch failed:"; cat "$run/create-$ch.log"; tail -20 "$run/orderer.log"; exit 1; }
            for _ in $(seq 240); do
                client "$port" --channel "$ch" channel-info >/dev/null 2>&1 && break
                sleep 0.5
            done
        done
        # Extra Deliver followers.
        FPIDS=()
        for ch in $(channels_of "$nch"); do
            for _ in $(seq 2 "$followers"); do
                client "$port" --channel "$ch" deliver --start newest --stop forever --quiet >/dev/null 2>&1 &
                FPIDS+=($!); PIDS+=($!)
            done
        done
        sleep 1
        # The VM's speed drifts (neighbours): one verify, measured now, is this row's yardstick.
        row_verify=$("$BIN/examples/p256_verify" 1024 1000 | python3 -c 'import json,sys; print(json.load(sys.stdin)["verify_cpu_us"])')
        load0=$(cut -d' ' -f1 /proc/loadavg)
        t0=$(cpu_ticks "$pid")
        j0=$(java_ticks)
        per=$((streams / nch)); [ "$per" -lt 1 ] && per=1
        LPIDS=()
        i=0
        for ch in $(channels_of "$nch"); do
            pool=$(pool_of "$size" "$nch" "$k")
            envs="$WORK/envelopes-$ch-$size-$per.bin"
            client "$port" --channel "$ch" broadcast --size "$size" --streams "$per" --window "$WINDOW" \
                --count "$pool" --envelopes "$envs" --duration "$DURATION" --drain-timeout 120 --json \
                >"$run/load-$i.json" 2>"$run/load-$i.err" &
            LPIDS+=($!)
            i=$((i + 1))
        done
        for p in "${LPIDS[@]}"; do wait "$p" || true; done
        t1=$(cpu_ticks "$pid")
        j1=$(java_ticks)
        load1=$(cut -d' ' -f1 /proc/loadavg)
        rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
        for p in "${FPIDS[@]}"; do kill "$p" 2>/dev/null || true; done
        kill "$pid"; wait "$pid" 2>/dev/null || true
        python3 - "$run" "$which" "$c" "$t0" "$t1" "$(getconf CLK_TCK)" "$rss" "$load0" "$load1" "$per" "$j0" "$j1" "$(pool_of "$size" "$nch" "$k")" "$row_verify" >>"$OUT_JSON.tmp" <<'PY'
import json, sys, glob
run, which, case, t0, t1, hz, rss, l0, l1, per, j0, j1, pool, row_verify = sys.argv[1:]
k, size, streams, nch, fol = case.split(':')
loads = []
for f in sorted(glob.glob(run + '/load-*.json')):
    try:
        loads.append(json.load(open(f)))
    except Exception as e:
        loads.append({'errors': [f'no report: {e}: ' + open(f.replace('.json', '.err')).read()[-300:]]})
def lat(key):
    return max((r.get('delivered_latency', {}).get(key, 0.0) for r in loads), default=0.0)
tps = sum(r.get('acked_tx_per_sec', 0.0) for r in loads)
delivered = sum(r.get('delivered', 0) for r in loads)
cpu_s = (int(t1) - int(t0)) / int(hz)
kafka_cpu_s = (int(j1) - int(j0)) / int(hz)
client_cpu_s = sum(r.get('client_cpu_s', 0.0) for r in loads)
errors = [e for r in loads for e in r.get('errors', [])] + \
         [f"{n}={v}" for r in loads for n, v in r.get('failures', {}).items()]
if any(r.get('sent', 0) >= int(pool) for r in loads):
    errors.append(f'pool of {pool} pre-signed envelopes used up before the time (raise POOL_RATE)')
print(json.dumps({
    'orderer': which, 'consenter': k, 'size': int(size), 'streams': int(streams),
    'channels': int(nch), 'followers': int(fol), 'streams_per_channel': int(per),
    'tx_per_sec': tps, 'success': sum(r.get('success', 0) for r in loads), 'delivered': delivered,
    'p50_ms': lat('p50_ms'), 'p99_ms': lat('p99_ms'), 'p999_ms': lat('p999_ms'),
    'cpu_s': cpu_s, 'cpu_s_per_1000_tx': 1000 * cpu_s / max(delivered, 1),
    'kafka_cpu_s_per_1000_tx': 1000 * kafka_cpu_s / max(delivered, 1),
    'client_cpu_s_per_1000_tx': 1000 * client_cpu_s / max(delivered, 1),
    'verify_us': float(row_verify),
    'peak_rss_mib': int(rss) / 1024, 'load_avg_start': float(l0), 'load_avg_end': float(l1),
    'errors': errors[:5],
}))
PY
        tail -1 "$OUT_JSON.tmp"
    done
done
case "$CASES" in *kafka*) delete_topics ;; esac

OURS_VERSION="$(git describe --always --dirty 2>/dev/null || echo unknown)"
[ -z "${B_BIN:-}" ] || FABRIC_BIN="$B_BIN (B build of ours, in Fabric's place)"
FABRIC_VERSION="$( { [ -x "$FABRIC_BIN" ] && "$FABRIC_BIN" version 2>/dev/null | awk -F': ' '/Version:|Go version/ {printf "%s ", $2}'; } || true)"
python3 - "$OUT_JSON.tmp" "$OUT_JSON" "$OUT_MD" "$VERIFY_JSON" "$CMDLINE" "$START_UTC" "$OURS_VERSION" \
    "$FABRIC_VERSION" "$DURATION" "$WINDOW" "$KAFKA_BROKERS" <<'PY'
import json, sys, subprocess, platform, datetime
tmp, out_json, out_md, verify, cmd, start, ours_v, fabric_v, dur, window, brokers = sys.argv[1:]
rows = [json.loads(l) for l in open(tmp) if l.strip()]
verify = json.loads(verify)
v_us = verify['verify_cpu_us']
json.dump({'verify': verify, 'rows': rows, 'command': cmd, 'start_utc': start}, open(out_json, 'w'), indent=1)
cpu = subprocess.run(['sh', '-c', "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
nproc = subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()
mem = subprocess.run(['sh', '-c', "awk '/MemTotal/ {printf \"%.0f GiB\", $2/1048576}' /proc/meminfo"], capture_output=True, text=True).stdout.strip()
rustc = subprocess.run(['rustc', '--version'], capture_output=True, text=True).stdout.strip()
cases = []
for r in rows:
    key = (r['consenter'], r['size'], r['streams'], r['channels'], r['followers'])
    if key not in cases:
        cases.append(key)
def get(key, who):
    for r in rows:
        if (r['consenter'], r['size'], r['streams'], r['channels'], r['followers']) == key and r['orderer'] == who:
            return r
def ratio(a, b, f):
    return f"{a[f] / b[f]:.2f}×" if a and b and b[f] else "–"
L = []
L.append("# Benchmarks: our orderer vs Fabric's Go orderer v2.5.16\n")
L.append(f"Run started {start}, finished {datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')}; "
         f"{dur} s of load per case and orderer; window {window} unanswered envelopes per Broadcast stream.\n")
L.append(f"- Machine: {nproc} vCPU ({cpu}), {mem} RAM, {platform.system()} {platform.release()}. "
         "Everything on this one machine: the Kafka cluster (3 ZooKeeper + 4 brokers, Kafka 3.9.2, "
         f"`scripts/kafka/kafka.sh`, brokers {brokers}), the orderer under test, the load generator and its followers.")
import os
if os.environ.get('B_BIN'):
    L.append(f"- A/B of two builds of ours: 'ours' = {os.environ.get('OURS_BIN', 'the release build')}, "
             f"the rows labelled Fabric = {os.environ['B_BIN']}. {rustc}.")
else:
    L.append(f"- Ours: commit `{ours_v}`, {rustc}, release profile. Fabric: `orderer` {fabric_v.strip()} (its sampleconfig with ORDERER_KAFKA_VERSION=2.0.0).")
L.append(f"- One ECDSA P-256 verification (ring, 1 KB message incl. SHA-256, one thread): "
         f"**{v_us:.1f} µs CPU** ({verify['verify_wall_us']:.1f} µs wall).")
L.append("- Load: `orderer-client broadcast` (sends envelopes signed before the clock starts, read from one file per "
         "channel, size and stream count that both orderers' runs share, so both get the same bytes; "
         "MESSAGE envelopes with a tx ID, payload value of SIZE bytes, client identity User1@SampleOrg), its own Deliver follower "
         "measures broadcast→delivered latency; `orderer-client deliver` processes add followers. "
         "Genesis: system channel `benchsys`, BatchTimeout 500 ms, MaxMessageCount 500, PreferredMaxBytes 2 MB; "
         "extra channels are created through the system channel before the load.")
L.append("- tx/s: SUCCESS responses ÷ (last response − first send), summed over channels. Latency: the worst channel's percentile. "
         "CPU: orderer process utime+stime during the load ÷ delivered tx, also as a multiple of one verify measured just before that run "
         "(this VM's speed drifts by ±15 % over minutes); Kafka: all JVMs (brokers, ZooKeeper) likewise; "
         "load gen: the load generators' own CPU while sending (followers' Deliver decoding included). RSS: the orderer's VmHWM.")
L.append("- Load average (1 min) at the start/end of each run is listed: the machine is shared, so figures are only as quiet as it was.\n")
L.append(f"Command: `{cmd}`\n")
L.append("| case (consenter, size, streams, channels, followers) | orderer | tx/s | p50 ms | p99 ms | p99.9 ms | CPU s / 1k tx | CPU/tx ÷ 1 verify (µs) | Kafka CPU s / 1k tx | load gen CPU s / 1k tx | peak RSS MiB | load avg | errors |")
L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
for key in cases:
    o, f = get(key, 'ours'), get(key, 'fabric')
    name = f"{key[0]}, {key[1]} B, {key[2]} str, {key[3]} ch, {key[4]} fol"
    for who, r in (('ours', o), ('Fabric', f)):
        if not r:
            continue
        L.append(f"| {name} | {who} | {r['tx_per_sec']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['p999_ms']:.1f} | "
                 f"{r['cpu_s_per_1000_tx']:.3f} | {1000 * r['cpu_s_per_1000_tx'] / r.get('verify_us', v_us):.2f} ({r.get('verify_us', v_us):.0f}) | "
                 f"{r.get('kafka_cpu_s_per_1000_tx', 0):.3f} | {r.get('client_cpu_s_per_1000_tx', 0):.3f} | {r['peak_rss_mib']:.0f} | "
                 f"{r['load_avg_start']:.2f}/{r['load_avg_end']:.2f} | {'; '.join(r['errors']) or '–'} |")
    if o and f:
        L.append(f"| {name} | **ours ÷ Fabric** | **{ratio(o, f, 'tx_per_sec')}** | {ratio(o, f, 'p50_ms')} | {ratio(o, f, 'p99_ms')} | "
                 f"{ratio(o, f, 'p999_ms')} | {ratio(o, f, 'cpu_s_per_1000_tx')} | | | | {ratio(o, f, 'peak_rss_mib')} | | |")
open(out_md, 'w').write('\n'.join(L) + '\n')
print('\n'.join(L))
PY
rm -f "$OUT_JSON.tmp"
