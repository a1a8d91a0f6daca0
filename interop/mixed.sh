#!/usr/bin/env bash
# Mixed ordering service: Fabric's own Go orderer and OUR orderer as two OSNs of one Kafka-based
# ordering service (same genesis block, same Kafka cluster, same topics).
#
#   interop/fabric-tools.sh                   # Fabric's tools in the cache (see README)
#   cargo build --release --bins
#   KAFKA_BROKERS=$(scripts/kafka/kafka.sh brokers) interop/mixed.sh [WORKDIR]
#
# Env: KAFKA_BROKERS (required: fails without it), OUR_BIN (default <repo>/target/release),
#      FABRIC_VERSION (v2.5.16 default, or v1.4.x: Fabric's v1.4 orderer and tools, see fabric-tools.sh),
#      FABRIC_INTEROP_CACHE (default ~/.cache/fabric-orderer-interop[-v1.4.x]),
#      N (envelopes per broadcast step, default 25).
# Checks (PASS/FAIL each; exit 1 if any failed):
#   k  Fabric's configtxgen makes the genesis block from Fabric's sampleconfig configtx.yaml profile
#      SampleDevModeKafka (cryptogen MSP, Kafka.Brokers = KAFKA_BROKERS, MaxMessageCount 10); our
#      configtxgen's block for the same file decodes (configtxlator) to the same JSON; both orderers
#      boot from Fabric's block in Kafka mode and accept Broadcast
#   m  envelopes broadcast to Fabric's orderer and to ours (the system channel) are ordered into blocks
#      whose header and data are byte-identical on both nodes, with the same Kafka offsets in the block
#      metadata (only the nodes' signatures differ)
#   r  the same R envelopes (signed once, same bytes; R=200 default) broadcast to Fabric's orderer and
#      to ours, one after the other and then both at once, as a client re-sending to the other OSN
#      does: both orderers order every copy (no RS_EXACTLY_ONCE capability in the sample profile), the
#      chains stay byte-identical and both keep serving (issue 14)
#   c  two config updates of the system channel computed from the same config (BatchSize and
#      BatchTimeout) sent on one stream, with normal traffic through both nodes, first to our orderer
#      (c1) then to Fabric's (c2): both take effect, the update consumed second is re-validated and
#      re-ordered by both OSNs (FAB-5969), and the chains stay identical including the Kafka metadata
#      (LastResubmittedConfigOffset, and time-to-cut blocks that record none)
#   b  a Kafka broker stopped while both order, then started again: identical chains
#   n  a channel created through Fabric's orderer (Fabric's channel tx) and one created through ours
#      (our configtxgen's channel tx) appear on both with identical blocks; envelopes broadcast to the
#      other node land in identical blocks
#   s  our orderer stopped while Fabric's orders more, restarted: it catches up to the same chain; then the
#      same with Fabric's orderer stopped and restarted
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
FABRIC_VERSION=${FABRIC_VERSION:-v2.5.16}
case $FABRIC_VERSION in
    v2.5.16) CACHE=${FABRIC_INTEROP_CACHE:-$HOME/.cache/fabric-orderer-interop} ;;
    v1.4.*)  CACHE=${FABRIC_INTEROP_CACHE:-$HOME/.cache/fabric-orderer-interop-$FABRIC_VERSION} ;;
    *) echo "FAIL: FABRIC_VERSION must be v2.5.16 or v1.4.x" >&2; exit 1 ;;
esac
FBIN=$CACHE/bin
OUR_BIN=$(cd "${OUR_BIN:-$REPO/target/release}" 2>/dev/null && pwd || echo "${OUR_BIN:-$REPO/target/release}")
N=${N:-25}
W=${1:-$(mktemp -d /tmp/fabric-mixed.XXXXXX)}
mkdir -p "$W"; W=$(cd "$W" && pwd)
FAILS=()
PASSES=0

[[ -n ${KAFKA_BROKERS:-} ]] || { echo "FAIL: KAFKA_BROKERS is not set (KAFKA_BROKERS=\$(scripts/kafka/kafka.sh brokers))" >&2; exit 1; }
for t in configtxgen configtxlator cryptogen peer orderer; do
    [[ -x $FBIN/$t ]] || { echo "FAIL: missing $FBIN/$t: run interop/fabric-tools.sh" >&2; exit 1; }
done
for t in orderer configtxgen orderer-client; do
    [[ -x $OUR_BIN/$t ]] || { echo "FAIL: missing $OUR_BIN/$t: cargo build --release --bins" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "FAIL: jq is needed" >&2; exit 1; }

pass() { echo "PASS $*"; PASSES=$((PASSES + 1)); }
fail() { echo "FAIL $*"; FAILS+=("$*"); }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# Channel IDs are Kafka topic names: unique per run, so a re-run on the same cluster starts fresh topics.
RUN=$(date +%s)
SYS=mixsys$RUN
CHA=mixa$RUN
CHB=mixb$RUN
OPORT=$(free_port); FPORT=$(free_port)
OUR=127.0.0.1:$OPORT; FAB=127.0.0.1:$FPORT
echo "workdir $W; Kafka $KAFKA_BROKERS; our orderer $OUR, Fabric's orderer $FAB; system channel $SYS"

cd "$W"
rm -rf crypto cfg
"$FBIN/cryptogen" generate --config="$HERE/crypto-config.yaml" --output=crypto >cryptogen.log 2>&1 \
    || { cat cryptogen.log; echo "FAIL: cryptogen" >&2; exit 1; }
ORG=$W/crypto/ordererOrganizations/example.com
ADMIN_MSP=$ORG/users/Admin@example.com/msp
mkdir -p cfg empty
# Fabric's sample configtx.yaml, unchanged except: the brokers, and 10 messages per block (sample: 500)
# so that blocks are cut by count as well as by BatchTimeout (2 s).
brokers_yaml=$(tr ',' '\n' <<<"$KAFKA_BROKERS" | sed 's/^/            - /')
# Fabric v1.4's configtxgen turns an unset Orderer.Addresses into 127.0.0.1:7050 (v2.3+ and ours do
# not): with v1.4 the two OSNs are listed there explicitly.
v14=0; [[ $FABRIC_VERSION == v1.4.* ]] && v14=1
awk -v b="$brokers_yaml" -v v14=$v14 -v a="            - $OUR
            - $FAB" '
    /^            - kafka[0-9]:9092$/ { if (!done) { print b; done = 1 } next }
    /^    Addresses:$/ && v14 { print; print a; next }
    /^        MaxMessageCount: 500$/ { print "        MaxMessageCount: 10"; next }
    { print }' "$CACHE/sampleconfig/configtx.yaml" >cfg/configtx.yaml
cp -r "$ORG/msp" cfg/msp
grep -q "$(cut -d, -f1 <<<"$KAFKA_BROKERS")" cfg/configtx.yaml || { echo "FAIL: could not set the brokers" >&2; exit 1; }

fabric_ctg() { FABRIC_CFG_PATH=$W/cfg "$FBIN/configtxgen" "$@"; }
our_ctg() { "$OUR_BIN/configtxgen" -configPath "$W/cfg" "$@"; }
decode() { "$FBIN/configtxlator" proto_decode --type "$1" --input "$2" --output "$3"; }
peer_cli() {
    FABRIC_CFG_PATH=$CACHE/sampleconfig CORE_PEER_MSPCONFIGPATH=$ADMIN_MSP CORE_PEER_LOCALMSPID=SampleOrg \
    FABRIC_LOGGING_SPEC=${PEER_LOG:-warning} "$FBIN/peer" "$@"
}
height() {   # $1 orderer, $2 channel: number of blocks (newest + 1), empty if unknown
    local n
    n=$(PEER_LOG=info peer_cli channel fetch newest /dev/null -o "$1" -c "$2" 2>&1 | sed -n 's/.*Received block: \([0-9]*\).*/\1/p' | tail -1)
    [[ -n $n ]] && echo $((n + 1))
}

# ---------- (k) genesis ----------
fabric_ctg -profile SampleDevModeKafka -channelID "$SYS" -outputBlock genesis.block >k-configtxgen.log 2>&1 \
    || { cat k-configtxgen.log; echo "FAIL: Fabric configtxgen SampleDevModeKafka" >&2; exit 1; }
pass "k: Fabric configtxgen -profile SampleDevModeKafka (sampleconfig configtx.yaml, cryptogen MSP, brokers $KAFKA_BROKERS)"
NORM='del(.. | .timestamp?, .nonce?, .tx_id?, .signature?, .data_hash?, .previous_hash?) | del(.metadata)'
if our_ctg -profile SampleDevModeKafka -channelID "$SYS" -outputBlock our-genesis.block >k-our-configtxgen.log 2>&1 \
   && decode common.Block genesis.block k-fabric.json && decode common.Block our-genesis.block k-ours.json \
   && diff -u <(jq -S "$NORM" k-fabric.json) <(jq -S "$NORM" k-ours.json) >k-genesis.diff; then
    pass "k: our configtxgen's SampleDevModeKafka block decodes to the same JSON as Fabric's (timestamps/nonces/txids/signatures/hashes removed)"
else
    fail "k: our configtxgen's SampleDevModeKafka block differs from Fabric's: $(tail -2 k-our-configtxgen.log; head -20 k-genesis.diff)"
fi
# channel-creation txs from both configtxgens (sample profile SampleSingleMSPChannel, consortium SampleConsortium)
fabric_ctg -profile SampleSingleMSPChannel -channelID "$CHA" -outputCreateChannelTx fabric-$CHA.tx >>k-configtxgen.log 2>&1 \
    || fail "k: Fabric configtxgen -outputCreateChannelTx: $(tail -2 k-configtxgen.log)"
our_ctg -profile SampleSingleMSPChannel -channelID "$CHB" -outputCreateChannelTx our-$CHB.tx >>k-our-configtxgen.log 2>&1 \
    || fail "k: our configtxgen -outputCreateChannelTx: $(tail -2 k-our-configtxgen.log)"

# ---------- start both OSNs ----------
OPID=""; FPID=""
start_ours() {   # $1 log
    FABRIC_CFG_PATH=$W/empty ORDERER_GENERAL_BOOTSTRAPFILE=$W/genesis.block \
    ORDERER_GENERAL_LOCALMSPDIR=$ORG/orderers/orderer.example.com/msp ORDERER_GENERAL_LOCALMSPID=SampleOrg \
    ORDERER_FILELEDGER_LOCATION=$W/our-ledger ORDERER_GENERAL_LISTENADDRESS=127.0.0.1 ORDERER_GENERAL_LISTENPORT=$OPORT \
    ORDERER_KAFKA_TOPIC_REPLICATIONFACTOR=3 FABRIC_LOGGING_SPEC=info \
    "$OUR_BIN/orderer" start >>"$1" 2>&1 &
    OPID=$!
}
start_fabric() {   # $1 log
    FABRIC_CFG_PATH=$CACHE/sampleconfig ORDERER_GENERAL_BOOTSTRAPMETHOD=file ORDERER_GENERAL_BOOTSTRAPFILE=$W/genesis.block \
    ORDERER_GENERAL_GENESISMETHOD=file ORDERER_GENERAL_GENESISFILE=$W/genesis.block \
    ORDERER_GENERAL_LOCALMSPDIR=$ORG/orderers/orderer2.example.com/msp ORDERER_GENERAL_LOCALMSPID=SampleOrg \
    ORDERER_FILELEDGER_LOCATION=$W/fabric-ledger ORDERER_GENERAL_LISTENADDRESS=127.0.0.1 ORDERER_GENERAL_LISTENPORT=$FPORT \
    ORDERER_OPERATIONS_LISTENADDRESS=127.0.0.1:0 ORDERER_ADMIN_LISTENADDRESS=127.0.0.1:0 \
    ORDERER_CHANNELPARTICIPATION_ENABLED=false ORDERER_KAFKA_TOPIC_REPLICATIONFACTOR=3 \
    "$FBIN/orderer" >>"$1" 2>&1 &
    FPID=$!
}
stop_ours() { [[ -n $OPID ]] && kill "$OPID" 2>/dev/null && wait "$OPID" 2>/dev/null; OPID=""; }
stop_fabric() { [[ -n $FPID ]] && kill "$FPID" 2>/dev/null && wait "$FPID" 2>/dev/null; FPID=""; }
trap 'stop_ours; stop_fabric' EXIT

broadcast() {   # $1 orderer, $2 channel, $3 count, $4 log: every envelope must get SUCCESS
    local out
    out=$(timeout 120 "$OUR_BIN/orderer-client" --server "$1" --channel "$2" --mspdir "$ADMIN_MSP" --mspid SampleOrg \
        broadcast --count "$3" --streams 1 --size 200 --no-follow 2>&1)
    echo "$out" >>"$4"
    grep -q "sent=$3 acked=$3 success=$3 " <<<"$out"
}
ready() {   # $1 orderer, $2 channel, $3 log: a Broadcast gets SUCCESS within 90 s (Kafka chain started)
    local i
    for i in $(seq 1 45); do
        broadcast "$1" "$2" 1 "$3" && return 0
        sleep 2
    done
    return 1
}
SENT_SYS=0

start_fabric "$W/fabric-orderer.log"
start_ours "$W/our-orderer.log"
if ready "$FAB" "$SYS" m-ready.log; then
    pass "k: Fabric's orderer $FABRIC_VERSION (Kafka) serves $SYS"; SENT_SYS=$((SENT_SYS + 1))
else
    fail "k: Fabric's orderer does not serve $SYS: $(grep -E 'PANI|ERRO' fabric-orderer.log | head -3)"
fi
if ready "$OUR" "$SYS" m-ready.log; then
    pass "k: our orderer boots in Kafka mode from Fabric's SampleDevModeKafka genesis block and serves $SYS"; SENT_SYS=$((SENT_SYS + 1))
else
    fail "k: our orderer does not serve $SYS: $(grep -E 'ERRO|WARN' our-orderer.log | head -3)"
fi

# ---------- compare the chains ----------
# waits until both nodes hold the same number of blocks of $1 holding $2 envelopes after block 0 (or
# $3 blocks if given), then compares every block byte-wise (header, data) and their metadata values
compare_chain() {   # $1 channel, $2 label, $3 expected envelope count (after block 0)
    local hf ho i total deadline=$((SECONDS + 90)) bad=0
    while :; do
        hf=$(height "$FAB" "$1"); ho=$(height "$OUR" "$1")
        if [[ -n $hf && $hf == "$ho" ]]; then
            total=0
            for i in $(seq 1 $((hf - 1))); do
                [[ -f $2-f-$i.block ]] || peer_cli channel fetch $i "$2-f-$i.block" -o "$FAB" -c "$1" >/dev/null 2>&1
                total=$((total + $(decode common.Block "$2-f-$i.block" /dev/stdout 2>/dev/null | jq '.data.data|length')))
            done
            [[ $total -ge $3 ]] && break
        fi
        ((SECONDS > deadline)) && { fail "$2: $1: heights Fabric ${hf:-?} / ours ${ho:-?}, ${total:-?} of $3 envelopes after 90 s"; return 1; }
        rm -f "$2"-f-*.block
        sleep 2
    done
    for i in $(seq 0 $((hf - 1))); do
        [[ -f $2-f-$i.block ]] || peer_cli channel fetch $i "$2-f-$i.block" -o "$FAB" -c "$1" >/dev/null 2>&1
        peer_cli channel fetch $i "$2-o-$i.block" -o "$OUR" -c "$1" >/dev/null 2>&1
        python3 "$HERE/blockcmp.py" ${CMP_FLAGS:-} "$2-f-$i.block" "$2-o-$i.block" >>"$2-cmp.log" 2>&1 || bad=$((bad + 1))
    done
    if ((bad == 0)); then
        pass "$2: $1: Fabric's and our orderer hold the same $hf blocks ($total envelopes): header+data byte-identical, same metadata values (Kafka offsets, last config); last: $(tail -1 "$2-cmp.log")"
    else
        fail "$2: $1: $bad of $hf blocks differ between Fabric's and our orderer: $(grep DIFFER "$2-cmp.log" | head -3)"
    fi
}

# ---------- (m) broadcast to both, same blocks ----------
broadcast "$FAB" "$SYS" "$N" m-broadcast.log && pass "m: $N envelopes broadcast to Fabric's orderer on $SYS" \
    || fail "m: broadcast to Fabric's orderer: $(tail -2 m-broadcast.log)"
broadcast "$OUR" "$SYS" "$N" m-broadcast.log && pass "m: $N envelopes broadcast to our orderer on $SYS" \
    || fail "m: broadcast to our orderer: $(tail -2 m-broadcast.log)"
SENT_SYS=$((SENT_SYS + 2 * N))
compare_chain "$SYS" m "$SENT_SYS"

# ---------- (r) the same envelopes re-sent to both nodes ----------
R=${R:-200}
resend() {   # $1 orderer, $2 log: the R envelopes of r-envelopes.bin (signed once), all SUCCESS
    local out
    out=$(timeout 300 "$OUR_BIN/orderer-client" --server "$1" --channel "$SYS" --mspdir "$ADMIN_MSP" --mspid SampleOrg \
        broadcast --count "$R" --envelopes r-envelopes.bin --streams 1 --size 200 --no-follow 2>&1)
    echo "$out" >>"$2"
    grep -q "sent=$R acked=$R success=$R " <<<"$out"
}
if resend "$FAB" r-broadcast.log && resend "$OUR" r-broadcast.log; then
    pass "r: the same $R envelopes (same bytes) broadcast to Fabric's orderer, then to ours, on $SYS"
else
    fail "r: re-sending the same envelopes one after the other: $(tail -2 r-broadcast.log)"
fi
resend "$FAB" r-broadcast-f.log & RF=$!
resend "$OUR" r-broadcast-o.log & RO=$!
if wait "$RF" && wait "$RO"; then
    pass "r: the same $R envelopes broadcast to both orderers at once"
else
    fail "r: re-sending the same envelopes to both at once: $(tail -2 r-broadcast-f.log r-broadcast-o.log)"
fi
SENT_SYS=$((SENT_SYS + 4 * R))
compare_chain "$SYS" r "$SENT_SYS"

# ---------- (c) config updates racing normal traffic ----------
encode() { "$FBIN/configtxlator" proto_encode --type "$1" --input "$2" --output "$3"; }
update_tx() {   # $1 channel, $2 config block, $3 jq filter on the config, $4 output CONFIG_UPDATE envelope
    decode common.Block "$2" /dev/stdout | jq '.data.data[0].payload.data.config' >"$4.orig.json" &&
    jq "$3" "$4.orig.json" >"$4.new.json" &&
    encode common.Config "$4.orig.json" "$4.orig.pb" && encode common.Config "$4.new.json" "$4.new.pb" &&
    "$FBIN/configtxlator" compute_update --channel_id "$1" --original "$4.orig.pb" --updated "$4.new.pb" \
        --output "$4.upd.pb" &&
    decode common.ConfigUpdate "$4.upd.pb" "$4.upd.json" &&
    jq -n --arg ch "$1" --slurpfile u "$4.upd.json" \
        '{payload: {header: {channel_header: {channel_id: $ch, type: 2}}, data: {config_update: $u[0]}}}' >"$4.env.json" &&
    encode common.Envelope "$4.env.json" "$4"
}
ORD_VALUES=.channel_group.groups.Orderer.values
CFG_PATH=.data.data[0].payload.data.config$ORD_VALUES
race_updates() {   # $1 label, $2 orderer taking both updates, $3 its name, $4 MaxMessageCount, $5 BatchTimeout
    local l=$1 node got
    if ! { peer_cli channel fetch config "$l-config.block" -o "$FAB" -c "$SYS" >"$l-fetch.log" 2>&1 \
        && update_tx "$SYS" "$l-config.block" "$ORD_VALUES.BatchSize.value.max_message_count = $4" "$l-count.tx" >"$l-tx.log" 2>&1 \
        && update_tx "$SYS" "$l-config.block" "$ORD_VALUES.BatchTimeout.value.timeout = \"$5\"" "$l-timeout.tx" >>"$l-tx.log" 2>&1; }; then
        fail "$l: building the config updates with Fabric's configtxlator: $(tail -3 "$l-fetch.log" "$l-tx.log")"
        return
    fi
    # Both updates on one Broadcast stream: validated against the same config, so the one
    # consumed second is stale and every OSN re-validates and re-orders it (FAB-5969).
    timeout 120 "$OUR_BIN/orderer-client" --server "$2" --channel "$SYS" --mspdir "$ADMIN_MSP" --mspid SampleOrg \
        channel update -f "$l-count.tx" --then "$l-timeout.tx" >"$l-update.log" 2>&1 & U=$!
    broadcast "$FAB" "$SYS" "$N" "$l-broadcast-f.log" & B1=$!
    broadcast "$OUR" "$SYS" "$N" "$l-broadcast-o.log" & B2=$!
    if wait "$U" && [[ $(grep -c '^status: SUCCESS' "$l-update.log") == 2 ]]; then
        pass "$l: two config updates of $SYS made from the same config (MaxMessageCount $4, BatchTimeout $5) sent on one stream to $3"
    else
        fail "$l: config updates through $3: $(tail -4 "$l-update.log")"
    fi
    if wait "$B1" && wait "$B2"; then
        pass "$l: $N envelopes through each orderer while the updates were ordered"
    else
        fail "$l: broadcast during the config updates: $(tail -2 "$l-broadcast-f.log" "$l-broadcast-o.log")"
    fi
    SENT_SYS=$((SENT_SYS + 2 * N + 2))
    compare_chain "$SYS" "$l" "$SENT_SYS"
    for node in "$FAB" "$OUR"; do
        peer_cli channel fetch config "$l-after.block" -o "$node" -c "$SYS" >>"$l-fetch.log" 2>&1
        got=$(decode common.Block "$l-after.block" /dev/stdout | jq -c "[$CFG_PATH.BatchSize.value.max_message_count, $CFG_PATH.BatchTimeout.value.timeout]")
        if [[ $got == "[$4,\"$5\"]" ]]; then
            pass "$l: $node's last config block of $SYS has both updates (MaxMessageCount $4, BatchTimeout $5)"
        else
            fail "$l: $node's last config block of $SYS: [MaxMessageCount, BatchTimeout] = $got, want [$4,\"$5\"]"
        fi
    done
    # The highest LastResubmittedConfigOffset recorded must have grown in this step.
    local resub
    resub=$(grep -o 'kafka=([0-9-]*, [0-9-]*, [0-9]*)' "$l-cmp.log" | sed 's/.*, //; s/)//' | sort -n | tail -1)
    if [[ -n $resub ]] && ((resub > LAST_RESUB)); then
        pass "$l: the stale update was re-ordered, and both orderers recorded the same LastResubmittedConfigOffset $resub: $(grep -m1 -o "number=[0-9]* kafka=([0-9-]*, [0-9-]*, $resub)" "$l-cmp.log")"
        LAST_RESUB=$resub
    else
        fail "$l: no new re-ordered config recorded (LastResubmittedConfigOffset at most ${resub:-0}, was $LAST_RESUB): the race did not happen"
    fi
}
LAST_RESUB=0
race_updates c1 "$OUR" "our orderer" 7 1500ms
race_updates c2 "$FAB" "Fabric's orderer" 8 1700ms

# ---------- (b) a broker stopped while both order ----------
KAFKA_SH=$REPO/scripts/kafka/kafka.sh
if "$KAFKA_SH" stop-broker 2 >b-kafka.log 2>&1; then
    broadcast "$FAB" "$SYS" "$N" b-broadcast.log && broadcast "$OUR" "$SYS" "$N" b-broadcast.log \
        && pass "b: $N envelopes through each orderer with broker 2 stopped" \
        || fail "b: broadcast with broker 2 stopped: $(tail -2 b-broadcast.log)"
    "$KAFKA_SH" start --wait >>b-kafka.log 2>&1 || fail "b: restarting the cluster: $(tail -2 b-kafka.log)"
    broadcast "$FAB" "$SYS" "$N" b-broadcast.log && broadcast "$OUR" "$SYS" "$N" b-broadcast.log \
        || fail "b: broadcast after broker 2 came back: $(tail -2 b-broadcast.log)"
    SENT_SYS=$((SENT_SYS + 4 * N))
    compare_chain "$SYS" b "$SENT_SYS"
else
    fail "b: kafka.sh stop-broker 2: $(tail -2 b-kafka.log)"
fi

# ---------- (n) channels created through either node ----------
if peer_cli channel create -o "$FAB" -c "$CHA" -f fabric-$CHA.tx --outputBlock n-$CHA-0.block >n-create.log 2>&1; then
    pass "n: peer channel create $CHA through Fabric's orderer (Fabric configtxgen's tx)"
else
    fail "n: peer channel create $CHA through Fabric's orderer: $(grep -E 'Error' n-create.log | head -2)"
fi
if peer_cli channel create -o "$OUR" -c "$CHB" -f our-$CHB.tx --outputBlock n-$CHB-0.block >>n-create.log 2>&1; then
    pass "n: peer channel create $CHB through our orderer (our configtxgen's tx)"
else
    fail "n: peer channel create $CHB through our orderer: $(grep -E 'Error' n-create.log | tail -2)"
fi
SENT_SYS=$((SENT_SYS + 2))   # the two ORDERER_TRANSACTION envelopes on the system channel
ready "$OUR" "$CHA" n-ready.log && ready "$FAB" "$CHB" n-ready.log \
    || fail "n: the new channels do not accept Broadcast on the other node"
broadcast "$OUR" "$CHA" "$N" n-broadcast.log || fail "n: broadcast to our orderer on $CHA: $(tail -2 n-broadcast.log)"
broadcast "$FAB" "$CHB" "$N" n-broadcast.log || fail "n: broadcast to Fabric's orderer on $CHB: $(tail -2 n-broadcast.log)"
SENT_A=$((N + 1)); SENT_B=$((N + 1))
compare_chain "$CHA" n-a "$SENT_A"
compare_chain "$CHB" n-b "$SENT_B"
compare_chain "$SYS" n-sys "$SENT_SYS"

# ---------- (s) restarts: each node catches up ----------
stop_ours
broadcast "$FAB" "$SYS" "$N" s-broadcast.log && broadcast "$FAB" "$CHA" "$N" s-broadcast.log \
    || fail "s: broadcast to Fabric's orderer while ours is down: $(tail -2 s-broadcast.log)"
SENT_SYS=$((SENT_SYS + N)); SENT_A=$((SENT_A + N))
start_ours "$W/our-orderer-restart.log"
compare_chain "$SYS" s-ours-sys "$SENT_SYS"
compare_chain "$CHA" s-ours-a "$SENT_A"
stop_fabric
broadcast "$OUR" "$SYS" "$N" s-broadcast.log && broadcast "$OUR" "$CHB" "$N" s-broadcast.log \
    || fail "s: broadcast to our orderer while Fabric's is down: $(tail -2 s-broadcast.log)"
SENT_SYS=$((SENT_SYS + N)); SENT_B=$((SENT_B + N))
start_fabric "$W/fabric-orderer-restart.log"
# Fabric's orderer restarted from its last block: if that was cut by a time-to-cut message it records
# no LastResubmittedConfigOffset, and Fabric's OSN forgets the value (see blockcmp.py --fabric-restarted).
CMP_FLAGS=--fabric-restarted compare_chain "$SYS" s-fabric-sys "$SENT_SYS"
CMP_FLAGS=--fabric-restarted compare_chain "$CHB" s-fabric-b "$SENT_B"
if grep -q equal-after-restart s-fabric-*-cmp.log 2>/dev/null; then
    echo "     (after Fabric's restart: $(grep -c equal-after-restart s-fabric-sys-cmp.log) blocks differ only in LastResubmittedConfigOffset, 0 on Fabric's side: $(grep -m1 -o 'number=[0-9]* kafka=([^)]*) vs ([^)]*)' s-fabric-sys-cmp.log))"
fi
stop_ours; stop_fabric

echo
echo "mixed.sh (Fabric $FABRIC_VERSION): $PASSES PASS, ${#FAILS[@]} FAIL"
if ((${#FAILS[@]})); then
    printf '  FAIL %s\n' "${FAILS[@]}"; exit 1
fi
