#!/usr/bin/env bash
# Ledger hand-over (issue 13): Fabric's orderer and ours take turns on ONE FileLedger.Location, as an
# operator swapping binaries on the same volume would:
#   F1  Fabric's orderer starts from the genesis block, orders a load
#   O1  ours starts on the same folder: serves every block F1 wrote, byte for byte, and orders more
#   F2  Fabric's orderer again: serves every block (O1's too) and orders more
#   O2  ours again: serves everything
# for a solo channel and, with KAFKA_BROKERS, a Kafka channel (each OSN resumes from the KafkaMetadata
# offsets of the last block, whichever orderer wrote it). After every step: the blocks the node serves
# start with exactly the bytes the previous node served (orderer-client deliver --raw-out), the whole
# chain passes scripts/faults/check_chains.py (numbering, data hashes, hash chain, every acknowledged
# tx ID once) and `orderer-client deliver --verify-signatures` (orderer signatures against the channel
# config), and `peer channel fetch newest` returns the same block from the node.
# Then: `orderer ledger verify` passes both final ledgers; copies of the ledger with one byte flipped in
# the middle of a block file (with and without our checksum file) and one whose block file is foreign
# bytes are refused by our orderer (exit != 0, the file and offset named; verify exits 1 too) and left
# byte-for-byte unchanged.
#
#   KAFKA_BROKERS=... OUR_BIN=target/debug FABRIC_VERSION=v1.4.12 interop/ledger-migration.sh [WORKDIR]
#
# Env: OUR_BIN (default <repo>/target/release), FABRIC_VERSION (default v1.4.12), FABRIC_INTEROP_CACHE,
#      KAFKA_BROKERS (the Kafka part fails without it unless KAFKA=0), RATE/SECS (load per step).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"
FABRIC_VERSION=${FABRIC_VERSION:-v1.4.12}
CACHE=$(interop_cache "$FABRIC_VERSION") || exit 2
FBIN=$CACHE/bin
OUR_BIN=$(cd "${OUR_BIN:-$REPO/target/release}" 2>/dev/null && pwd || echo "${OUR_BIN:-$REPO/target/release}")
W=${1:-$(mktemp -d /tmp/fabric-ledger-migration.XXXXXX)}
mkdir -p "$W"; W=$(cd "$W" && pwd)
RATE=${RATE:-40}; SECS=${SECS:-3}
FAILS=(); PASSES=0
pass() { echo "PASS $*"; PASSES=$((PASSES + 1)); }
fail() { echo "FAIL $*"; FAILS+=("$*"); }

for t in configtxgen cryptogen peer orderer; do
    [[ -x $FBIN/$t ]] || { echo "FAIL: missing $FBIN/$t: run FABRIC_VERSION=$FABRIC_VERSION interop/fabric-tools.sh" >&2; exit 1; }
done
for t in orderer orderer-client; do
    [[ -x $OUR_BIN/$t ]] || { echo "FAIL: missing $OUR_BIN/$t: cargo build --bins" >&2; exit 1; }
done
if [[ ${KAFKA:-1} != 0 && -z ${KAFKA_BROKERS:-} ]]; then
    echo "FAIL: KAFKA_BROKERS is not set (KAFKA=0 runs the solo part only)" >&2; exit 1
fi

PORT=$(free_port); ORD=127.0.0.1:$PORT
RUN=$(date +%s)
echo "workdir $W; orderer port $PORT; Fabric $FABRIC_VERSION tools $FBIN; our binaries $OUR_BIN"
cd "$W"
"$FBIN/cryptogen" generate --config="$HERE/crypto-config.yaml" --output=crypto >cryptogen.log 2>&1 \
    || { cat cryptogen.log; echo "FAIL: cryptogen" >&2; exit 1; }
ORG=$W/crypto/ordererOrganizations/example.com
ORDERER_MSP=$ORG/orderers/orderer.example.com/msp
ADMIN_MSP=$ORG/users/Admin@example.com/msp
mkdir -p cfg empty
cp -r "$ORG/msp" cfg/msp
if [[ $FABRIC_VERSION == v1.4.* ]]; then
    interop_configtx_v14 "$PORT" <"$HERE/configtx.yaml"
else
    sed "s/127.0.0.1:7050/$ORD/" "$HERE/configtx.yaml"
fi | interop_configtx_brokers "${KAFKA_BROKERS:-127.0.0.1:9092}" >cfg/configtx.yaml

peer_cli() {
    FABRIC_CFG_PATH=$CACHE/sampleconfig CORE_PEER_MSPCONFIGPATH=$ADMIN_MSP CORE_PEER_LOCALMSPID=SampleOrg \
    FABRIC_LOGGING_SPEC=warning "$FBIN/peer" "$@"
}
client() { "$OUR_BIN/orderer-client" --server "$ORD" --channel "$CH" --mspdir "$ADMIN_MSP" --mspid SampleOrg "$@"; }

PID=""
common_env=(ORDERER_GENERAL_LISTENADDRESS=127.0.0.1 ORDERER_GENERAL_LISTENPORT=$PORT
            ORDERER_GENERAL_LOCALMSPDIR=$ORDERER_MSP ORDERER_GENERAL_LOCALMSPID=SampleOrg
            ORDERER_KAFKA_TOPIC_REPLICATIONFACTOR=3)
start_node() {   # $1 fabric|ours, $2 log
    if [[ $1 == fabric ]]; then
        env "${common_env[@]}" FABRIC_CFG_PATH=$CACHE/sampleconfig ORDERER_FILELEDGER_LOCATION=$LEDGER \
            ORDERER_GENERAL_GENESISMETHOD=file ORDERER_GENERAL_GENESISFILE=$GENESIS \
            ORDERER_GENERAL_BOOTSTRAPMETHOD=file ORDERER_GENERAL_BOOTSTRAPFILE=$GENESIS \
            ORDERER_OPERATIONS_LISTENADDRESS=127.0.0.1:0 ORDERER_ADMIN_LISTENADDRESS=127.0.0.1:0 \
            ORDERER_CHANNELPARTICIPATION_ENABLED=false "$FBIN/orderer" >>"$2" 2>&1 &
    else
        env "${common_env[@]}" FABRIC_CFG_PATH=$W/empty ORDERER_FILELEDGER_LOCATION=$LEDGER \
            ORDERER_GENERAL_BOOTSTRAPFILE=$GENESIS "$OUR_BIN/orderer" start >>"$2" 2>&1 &
    fi
    PID=$!
}
stop_node() { [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=""; }
trap stop_node EXIT
ready() {   # a Broadcast gets SUCCESS within 90 s
    local i
    for i in $(seq 1 45); do
        kill -0 "$PID" 2>/dev/null || return 1
        client broadcast --count 1 --streams 1 --size 64 --no-follow 2>&1 | grep -q "success=1 " && return 0
        sleep 2
    done
    return 1
}
dump() {   # $1 file: every block the node serves now, raw
    client deliver --start oldest --stop newest --raw-out "$1" >/dev/null 2>&1
}
# prefix_equal OLD NEW: NEW holds at least OLD's blocks and starts with exactly OLD's bytes
prefix_equal() {
    python3 - "$1" "$2" <<'PY'
import struct, sys
def blocks(p):
    b = open(p, 'rb').read(); i = 0; out = []
    while i < len(b):
        n = struct.unpack('>I', b[i:i+4])[0]; out.append(b[i+4:i+4+n]); i += 4 + n
    return out
old, new = blocks(sys.argv[1]), blocks(sys.argv[2])
bad = [k for k in range(min(len(old), len(new))) if old[k] != new[k]]
print(f"{len(old)} -> {len(new)} blocks" + (f", block {bad[0]} differs" if bad else ""))
sys.exit(0 if len(new) >= len(old) and not bad else 1)
PY
}
last_block() {   # $1 raw dump, $2 out: the newest block's bytes
    python3 - "$1" "$2" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read(); i = 0; last = b''
while i < len(b):
    n = struct.unpack('>I', b[i:i+4])[0]; last = b[i+4:i+4+n]; i += 4 + n
open(sys.argv[2], 'wb').write(last)
PY
}

# step KIND LABEL NODE PREV: start NODE on the ledger, check what it serves against PREV's dump, load, dump
step() {
    local kind=$1 label=$2 node=$3 prev=$4 log=$W/$1-$2-$3.log out
    start_node "$node" "$log"
    if ! ready; then
        fail "$kind $label: $node orderer does not serve $CH on the ledger: $(grep -aE 'PANI|ERRO|Error' "$log" | head -3)"
        stop_node; return 1
    fi
    if [[ -n $prev ]]; then
        dump "$kind-$label-before.raw"
        if out=$(prefix_equal "$prev" "$kind-$label-before.raw"); then
            pass "$kind $label: $node orderer serves every block of the previous node byte for byte ($out)"
        else
            fail "$kind $label: $node orderer does not serve the previous blocks unchanged ($out)"
        fi
    fi
    client broadcast --streams 2 --size 200 --duration "$SECS" --rate "$RATE" --ack-log "$kind-acks-$label.log" \
        --no-follow >"$kind-$label-broadcast.log" 2>&1 \
        || fail "$kind $label: load through $node: $(tail -2 "$kind-$label-broadcast.log")"
    sleep 3   # BatchTimeout 2 s: the last batch is cut
    dump "$kind-$label.raw"
    last_block "$kind-$label.raw" "$kind-$label-newest.raw"
    peer_cli channel fetch newest "$kind-$label-peer.block" -o "$ORD" -c "$CH" >"$kind-$label-fetch.log" 2>&1
    if cmp -s "$kind-$label-peer.block" "$kind-$label-newest.raw"; then
        pass "$kind $label: peer channel fetch newest from $node = the newest block it delivers ($(wc -l <"$kind-acks-$label.log") acked envelopes ordered)"
    else
        fail "$kind $label: peer channel fetch newest from $node differs or failed: $(grep -a Error "$kind-$label-fetch.log" | head -2)"
    fi
    if client deliver --start oldest --stop newest --verify-signatures -q >"$kind-$label-verify.log" 2>&1; then
        pass "$kind $label: every block served by $node verifies (hash links, orderer signatures)"
    else
        fail "$kind $label: deliver --verify-signatures against $node: $(tail -2 "$kind-$label-verify.log")"
    fi
    stop_node
}

chain_check() {   # $1 kind, $2 final dump
    if python3 "$REPO/scripts/faults/check_chains.py" --chain "last=$2" --acks "$1"-acks-*.log >"$1-check.log" 2>&1; then
        pass "$1: check_chains.py over the final chain: $(tail -1 "$1-check.log")"
    else
        fail "$1: check_chains.py: $(tail -3 "$1-check.log")"
    fi
}

run_kind() {   # $1 solo|kafka, $2 configtxgen profile
    local kind=$1
    CH=mig$kind$RUN; LEDGER=$W/$kind-ledger; GENESIS=$W/$kind-genesis.block
    FABRIC_CFG_PATH=$W/cfg "$FBIN/configtxgen" -profile "$2" -channelID "$CH" -outputBlock "$GENESIS" \
        >"$kind-configtxgen.log" 2>&1 || { fail "$kind: configtxgen $2: $(tail -2 "$kind-configtxgen.log")"; return; }
    step "$kind" F1 fabric "" || return
    step "$kind" O1 ours "$kind-F1.raw" || return
    if [[ -d $LEDGER/index ]]; then
        fail "$kind O1: Fabric's LevelDB index is still in place after our orderer appended (Fabric would trust its stale checkpoint)"
    else
        pass "$kind O1: Fabric's stale index moved aside ($(cd "$LEDGER" && ls -d index.* 2>/dev/null | head -1)), nothing deleted"
    fi
    step "$kind" F2 fabric "$kind-O1.raw" || return
    step "$kind" O2 ours "$kind-F2.raw" || return
    chain_check "$kind" "$kind-O2.raw"
}

# refused DIR LABEL: our orderer must exit with an error naming the block file, and change nothing
refused() {
    local dir=$1 label=$2 before after log=$W/refused-$2.log
    before=$(cd "$dir" && find . -type f | sort | xargs sha256sum)
    LEDGER=$dir start_node ours "$log"
    local i; for i in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$PID" 2>/dev/null; then
        fail "refuse $label: our orderer is still running on a damaged ledger"; stop_node
    elif grep -aq "blockfile_000000" "$log" && grep -aqi "offset" "$log"; then
        pass "refuse $label: our orderer refuses to start: $(grep -a blockfile_000000 "$log" | head -1 | cut -c1-240)"
    else
        fail "refuse $label: the start-up error does not name the file and offset: $(tail -2 "$log")"
    fi
    PID=""
    after=$(cd "$dir" && find . -type f | sort | xargs sha256sum)
    [[ $before == "$after" ]] && pass "refuse $label: the ledger is byte-for-byte unchanged" \
        || fail "refuse $label: the ledger was changed"
}

run_kind solo InteropDevModeSolo
if [[ ${KAFKA:-1} != 0 ]]; then
    run_kind kafka InteropDevModeKafka
fi

flip_middle() {   # $1 file: one byte in the middle XOR 0x5A
    python3 - "$1" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[len(b) // 2] ^= 0x5A; open(p, 'wb').write(b)
PY
}
flip_data_hash() {   # $1 file: one byte of the data_hash of the block whose record holds the middle
    python3 - "$1" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); i = 0
def uvarint(i):
    v = s = 0
    while True:
        c = b[i]; i += 1; v |= (c & 0x7F) << s; s += 7
        if not c & 0x80: return v, i
while True:
    n, body = uvarint(i)
    if body + n > len(b) // 2:
        break
    i = body + n
b[body + 5] ^= 0x5A   # uvarint(number) + uvarint(32) + data_hash bytes: byte 5 is inside data_hash
open(p, 'wb').write(b)
PY
}
# the offline check: the final ledgers pass, a damaged copy fails naming the file
verify() {   # $1 dir, $2 label, $3 expected exit status
    local rc=0
    "$OUR_BIN/orderer" ledger verify "$1" >"verify-$2.log" 2>&1 || rc=$?
    if [[ $rc == "$3" ]] && { [[ $3 == 0 ]] || grep -q "blockfile_000000 at offset" "verify-$2.log"; }; then
        pass "ledger verify $2: exit $rc: $(head -1 "verify-$2.log" | cut -c1-200)"
    else
        fail "ledger verify $2: exit $rc (expected $3): $(head -2 "verify-$2.log")"
    fi
}

# damaged copies of the solo ledger
LEDGER=$W/solo-ledger; GENESIS=$W/solo-genesis.block
verify "$LEDGER" solo 0
[[ ${KAFKA:-1} != 0 ]] && verify "$W/kafka-ledger" kafka 0
if [[ -f $LEDGER/chains/migsolo$RUN/blockfile_000000 ]]; then
    rm -rf damaged fabric-only foreign; cp -r "$LEDGER" damaged; cp -r "$LEDGER" foreign; cp -r "$LEDGER" fabric-only
    flip_middle damaged/chains/migsolo$RUN/blockfile_000000
    verify "$W/damaged" damaged 1
    refused "$W/damaged" "a byte flipped in the middle of blockfile_000000"
    # as Fabric alone leaves it: no checksum file of ours beside the blocks
    rm -rf fabric-only/rust-orderer
    flip_data_hash fabric-only/chains/migsolo$RUN/blockfile_000000
    refused "$W/fabric-only" "a byte flipped in blockfile_000000, no checksum file (a ledger only Fabric wrote)"
    f=foreign/chains/migsolo$RUN/blockfile_000000
    head -c "$(stat -c %s "$f")" /dev/urandom >"$f"
    refused "$W/foreign" "blockfile_000000 replaced by foreign bytes"
else
    fail "refuse: no solo ledger to damage"
fi

echo
echo "ledger-migration.sh (Fabric $FABRIC_VERSION): $PASSES PASS, ${#FAILS[@]} FAIL"
if ((${#FAILS[@]})); then
    printf '  FAIL %s\n' "${FAILS[@]}"; exit 1
fi
