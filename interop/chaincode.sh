#!/usr/bin/env bash
# Endorsed transactions through our orderer (issue 17 item 7): a Fabric v1.4.12 peer in development mode
# (`peer node start --peer-chaincodedev=true`: the peer launches no chaincode container; the chaincode
# binary, built here from interop/chaincode/counter against the v1.4.12 shim, connects to the peer itself)
# instantiates the chaincode on a channel ordered by OUR orderer and commits N invocations, first with
# solo ordering, then with Kafka ordering on the cluster in KAFKA_BROKERS.
#
# Per ordering type (solo, kafka):
#   1  Fabric's configtxgen makes the genesis block (interop/configtx.yaml with v1.4 capabilities), our
#      orderer boots from it, `peer channel create` through it, the peer joins with block 0
#   2  the chaincode registers with the peer; `peer chaincode install` and `instantiate` (endorsement
#      policy OR('SampleOrg.member'), the peer's own org)
#   3  `put` once, then N `inc` invocations by WORKERS parallel clients (`peer chaincode invoke
#      --waitForEvent`, one counter key per client so that no two transactions of a block touch the same
#      key); every CLI run must exit 0 and report its txid `committed with status (VALID)`
#   4  the blocks: every block as our orderer delivers it (orderer-client deliver --raw-out) and as the peer
#      committed it (qscc GetBlockByNumber through the peer); interop/txfilter.py counts the validation
#      codes in the peer's TRANSACTIONS_FILTER (block metadata index 2). PASS only if the peer holds every
#      block of the orderer with the same header and data bytes, every transaction of every block is
#      VALID, the blocks hold exactly N + 2 endorser transactions (instantiate, put, N inc) and every
#      invocation's txid is VALID in exactly one block
#   5  state: `peer chaincode query get` of each client's key returns its number of invocations, and the
#      put key its value
#
#   KAFKA_BROKERS=... OUR_BIN=target/debug interop/chaincode.sh [WORKDIR]
#
# Env: OUR_BIN (default <repo>/target/release), FABRIC_INTEROP_CACHE, N (invocations per ordering type,
#      default 300), WORKERS (default 10), KAFKA_BROKERS (required unless KAFKA=0: solo only).
# Fails (never skips) when Go, Fabric's v1.4.12 tools (interop/fabric-tools.sh) or our binaries are missing.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"
FABRIC_VERSION=v1.4.12   # dev mode + `peer chaincode install/instantiate` is the v1.x lifecycle
CACHE=$(interop_cache $FABRIC_VERSION) || exit 2
FBIN=$CACHE/bin
OUR_BIN=$(cd "${OUR_BIN:-$REPO/target/release}" 2>/dev/null && pwd || echo "${OUR_BIN:-$REPO/target/release}")
W=${1:-$(mktemp -d /tmp/fabric-chaincode.XXXXXX)}
mkdir -p "$W"; W=$(cd "$W" && pwd)
N=${N:-300}; WORKERS=${WORKERS:-10}
CC=counter; CCV=1.0
FAILS=(); PASSES=0
pass() { echo "PASS $*"; PASSES=$((PASSES + 1)); }
fail() { echo "FAIL $*"; FAILS+=("$*"); }

command -v go >/dev/null || { echo "FAIL: go is not on PATH (builds the chaincode; the peer CLI runs go list)" >&2; exit 1; }
for t in configtxgen cryptogen peer; do
    [[ -x $FBIN/$t ]] || { echo "FAIL: missing $FBIN/$t: run FABRIC_VERSION=$FABRIC_VERSION interop/fabric-tools.sh" >&2; exit 1; }
done
for t in orderer orderer-client; do
    [[ -x $OUR_BIN/$t ]] || { echo "FAIL: missing $OUR_BIN/$t: cargo build --bins" >&2; exit 1; }
done
if [[ ${KAFKA:-1} != 0 && -z ${KAFKA_BROKERS:-} ]]; then
    echo "FAIL: KAFKA_BROKERS is not set (KAFKA=0 runs the solo part only)" >&2; exit 1
fi
((N % WORKERS == 0)) || { echo "N ($N) must be a multiple of WORKERS ($WORKERS)" >&2; exit 2; }

PORT=$(free_port); ORD=127.0.0.1:$PORT
RUN=$(date +%s)
echo "workdir $W; orderer port $PORT; Fabric $FABRIC_VERSION tools $FBIN; our binaries $OUR_BIN; N=$N WORKERS=$WORKERS"
cd "$W"
"$FBIN/cryptogen" generate --config="$HERE/crypto-config.yaml" --output=crypto >cryptogen.log 2>&1 \
    || { cat cryptogen.log; echo "FAIL: cryptogen" >&2; exit 1; }
ORG=$W/crypto/ordererOrganizations/example.com
ORDERER_MSP=$ORG/orderers/orderer.example.com/msp
PEER_MSP=$ORG/orderers/peer0.example.com/msp
ADMIN_MSP=$ORG/users/Admin@example.com/msp
mkdir -p cfg empty
cp -r "$ORG/msp" cfg/msp
# the org's OrdererEndpoints (where the peer pulls blocks from) and Orderer.Addresses -> our orderer
sed "s/127.0.0.1:7050/$ORD/" "$HERE/configtx.yaml" | interop_configtx_v14 "$PORT" \
    | interop_configtx_brokers "${KAFKA_BROKERS:-127.0.0.1:9092}" >cfg/configtx.yaml

# the chaincode: a binary for the peer's dev mode, and its source in a GOPATH for `peer chaincode install`
# (v1.4's CLI packages the source it finds under $GOPATH/src/<path> after a GOPATH-mode `go list`)
if interop_build_chaincode "$CACHE" "$HERE/fabric-$FABRIC_VERSION" "$HERE/chaincode/counter" "$W/$CC" >cc-build.log 2>&1; then
    pass "chaincode: interop/chaincode/counter built against the $FABRIC_VERSION shim (offline, pinned go.sum)"
else
    fail "chaincode: build: $(tail -3 cc-build.log)"; exit 1
fi
mkdir -p ccgopath/src/$CC && cp "$HERE"/chaincode/counter/*.go ccgopath/src/$CC/
# v1.4's CLI reads GOPATH and GOROOT from `go env`, stripping double quotes; Go >= 1.21 quotes the values
# with single quotes (GOPATH='/x'), which v1.4 then takes as part of the path ("path to chaincode does not
# exist: '/x'/src/counter"). The CLI gets a `go` first in its PATH that prints `go env` the old way.
mkdir -p gowrap
cat >gowrap/go <<WRAP
#!/bin/sh
if [ "\$#" = 1 ] && [ "\$1" = env ]; then
    "$(command -v go)" env | sed "s/^\([A-Za-z0-9_]*\)='\(.*\)'\$/\1=\"\2\"/"; exit
fi
exec "$(command -v go)" "\$@"
WRAP
chmod +x gowrap/go

peer_cli() {   # the org admin against the peer (CORE_PEER_ADDRESS) and our orderer
    FABRIC_CFG_PATH=$CACHE/sampleconfig CORE_PEER_MSPCONFIGPATH=$ADMIN_MSP CORE_PEER_LOCALMSPID=SampleOrg \
    CORE_PEER_ADDRESS=$PEER_ADDR CORE_PEER_TLS_ENABLED=false FABRIC_LOGGING_SPEC=${CLI_LOGGING:-info} \
    GOPATH=$W/ccgopath GO111MODULE=off PATH=$W/gowrap:$PATH "$FBIN/peer" "$@"
}

ORDERER_PID=""; CCPID=""; PEER_PID=""
stop_all() {
    [[ -n $CCPID ]] && kill "$CCPID" 2>/dev/null && wait "$CCPID" 2>/dev/null; CCPID=""
    interop_peer_stop
    interop_orderer_stop
}
trap stop_all EXIT

# retry_unavailable LOG CMD...: CMD, again while the orderer answers SERVICE_UNAVAILABLE, for up to 60 s (a
# Kafka chain that is still connecting refuses envelopes; should one have been ordered all the same, the
# duplicate shows up in the block checks below as an invalid transaction or a wrong count)
retry_unavailable() {
    local log=$1 i; shift
    for i in $(seq 1 30); do
        "$@" >"$log" 2>&1 && return 0
        grep -q SERVICE_UNAVAILABLE "$log" || return 1
        sleep 2
    done
    return 1
}

invoke_worker() {   # $1 worker, $2 count, $3 log: sequential `inc k<worker>`, each waiting for its commit
    local i
    for i in $(seq 1 "$2"); do
        peer_cli chaincode invoke -o "$ORD" -C "$CH" -n $CC -c "{\"Args\":[\"inc\",\"k$1\"]}" --waitForEvent \
            >>"$3" 2>&1 || echo "INVOKE FAILED: worker $1 invocation $i (exit $?)" >>"$3"
    done
}

query() {   # $1 key: the chaincode's value through the peer
    CLI_LOGGING=warning peer_cli chaincode query -C "$CH" -n $CC -c "{\"Args\":[\"get\",\"$1\"]}" 2>/dev/null
}

run_kind() {   # $1 solo|kafka, $2 configtxgen profile of the system channel
    local kind=$1 k=$1- i
    CH=cc$kind$RUN; local sys=sys$kind$RUN
    FABRIC_CFG_PATH=$W/cfg "$FBIN/configtxgen" -profile "$2" -channelID "$sys" -outputBlock "${k}genesis.block" \
        >"${k}configtxgen.log" 2>&1 || { fail "$kind: configtxgen $2: $(tail -2 "${k}configtxgen.log")"; return; }
    FABRIC_CFG_PATH=$W/cfg "$FBIN/configtxgen" -profile InteropChannel -channelID "$CH" -outputCreateChannelTx "${k}channel.tx" \
        >>"${k}configtxgen.log" 2>&1 || { fail "$kind: configtxgen InteropChannel: $(tail -2 "${k}configtxgen.log")"; return; }
    if ! interop_orderer_start "$OUR_BIN" "$W/empty" "$W/${k}genesis.block" "$W/${k}ledger" "$ORDERER_MSP" "$PORT" \
            "$W/${k}orderer.log" ORDERER_KAFKA_TOPIC_REPLICATIONFACTOR=3; then
        fail "$kind: our orderer does not start: $(tail -3 "${k}orderer.log")"; stop_all; return
    fi
    if ! interop_peer_start "$FBIN" "$CACHE/sampleconfig" "$PEER_MSP" "$W/${k}peer-fs" "$W/${k}peer.log" --peer-chaincodedev=true; then
        fail "$kind: the peer does not start in dev mode: $(grep -E 'PANI|ERRO|FATA' "${k}peer.log" | head -3)"; stop_all; return
    fi
    grep -q 'Running in chaincode development mode' "${k}peer.log" \
        || fail "$kind: the peer does not say it runs in chaincode development mode"
    local t0=$SECONDS
    if retry_unavailable "${k}create.log" peer_cli channel create -o "$ORD" -c "$CH" -f "${k}channel.tx" --outputBlock "${k}block0.block" \
       && peer_cli channel join -b "${k}block0.block" >"${k}join.log" 2>&1; then
        pass "$kind: our orderer ($kind) created $CH; the peer (dev mode) joined it with block 0 from our orderer"
    else
        fail "$kind: channel create/join: $(grep -hE 'Error' "${k}create.log" "${k}join.log" 2>/dev/null | head -2)"; stop_all; return
    fi

    CORE_CHAINCODE_ID_NAME=$CC:$CCV CORE_PEER_ADDRESS=$PEER_CC_ADDR CORE_PEER_TLS_ENABLED=false \
        CORE_CHAINCODE_LOGGING_LEVEL=info "$W/$CC" >"${k}chaincode.log" 2>&1 &
    CCPID=$!
    if peer_cli chaincode install -n $CC -v $CCV -p $CC >"${k}install.log" 2>&1 \
       && retry_unavailable "${k}instantiate.log" peer_cli chaincode instantiate -o "$ORD" -C "$CH" -n $CC -v $CCV \
              -c '{"Args":["init"]}' -P "OR('SampleOrg.member')"; then
        pass "$kind: peer chaincode install + instantiate $CC:$CCV (endorsement policy OR('SampleOrg.member'))"
    else
        fail "$kind: install/instantiate: $(grep -hE 'Error' "${k}install.log" "${k}instantiate.log" 2>/dev/null | head -3)"; stop_all; return
    fi
    # the instantiate transaction commits asynchronously: until the peer has committed it, it refuses to
    # endorse (`chaincode counter not found`, nothing is sent to the orderer) and the put is tried again
    local put_ok=""
    for i in $(seq 1 30); do
        if peer_cli chaincode invoke -o "$ORD" -C "$CH" -n $CC -c '{"Args":["put","greeting","hello"]}' --waitForEvent \
              >"${k}put.log" 2>&1 && grep -q 'committed with status (VALID)' "${k}put.log"; then
            put_ok=1; break
        fi
        grep -q 'endorsement failure' "${k}put.log" || break
        sleep 1
    done
    [[ -n $put_ok ]] && pass "$kind: put committed VALID (the chaincode runs outside any container, registered with the dev-mode peer)" \
        || fail "$kind: put: $(grep -E 'Error|status' "${k}put.log" | head -2)"

    # N invocations by WORKERS parallel clients
    local per=$((N / WORKERS)) t1=$SECONDS pids=()
    for i in $(seq 1 "$WORKERS"); do
        invoke_worker "$i" "$per" "$W/${k}invoke-$i.log" &
        pids+=($!)
    done
    wait "${pids[@]}"
    local secs=$((SECONDS - t1))
    cat "${k}"invoke-*.log >"${k}invoke.log"
    local ok failed valid_lines
    ok=$(grep -c 'Chaincode invoke successful' "${k}invoke.log")
    failed=$(grep -c 'INVOKE FAILED' "${k}invoke.log")
    valid_lines=$(grep -c 'committed with status (VALID)' "${k}invoke.log")
    sed -n 's/.*txid \[\([0-9a-f]*\)\] committed with status.*/\1/p' "${k}put.log" "${k}invoke.log" >"${k}txids.txt"
    if [[ $ok == "$N" && $failed == 0 && $valid_lines == "$N" ]]; then
        pass "$kind: $N invocations by $WORKERS clients in $secs s: every CLI run exited 0 and saw its txid committed VALID"
    else
        fail "$kind: invocations: $ok successful, $failed failed, $valid_lines committed VALID of $N: $(grep -oE 'committed with status \([A-Z_]*\)' "${k}invoke.log" | sort | uniq -c | paste -sd,) $(grep -E 'Error|INVOKE FAILED' "${k}invoke.log" | head -2)"
    fi

    # the blocks, from our orderer and from the peer
    local height
    "$OUR_BIN/orderer-client" --server "$ORD" --channel "$CH" --mspdir "$ADMIN_MSP" --mspid SampleOrg \
        deliver --start oldest --stop newest --raw-out "${k}orderer.raw" >"${k}deliver.log" 2>&1 \
        || fail "$kind: Deliver from our orderer: $(tail -2 "${k}deliver.log")"
    local delivered
    delivered=$(python3 -c 'import sys,struct
b=open(sys.argv[1],"rb").read();i=n=0
while i<len(b): i+=4+struct.unpack(">I",b[i:i+4])[0]; n+=1
print(n)' "${k}orderer.raw" 2>/dev/null)
    height=""
    for i in $(seq 1 30); do   # every invocation waited for its commit: the peer should be there already
        CLI_LOGGING=warning peer_cli channel getinfo -c "$CH" >"${k}getinfo.log" 2>&1
        height=$(sed -n 's/.*Blockchain info: //p' "${k}getinfo.log" | jq -r .height 2>/dev/null)
        [[ -n $height && $height == "${delivered:-?}" ]] && break
        sleep 1
    done
    mkdir -p "${k}peer-blocks"
    for i in $(seq 0 $((${height:-0} - 1))); do
        CLI_LOGGING=warning peer_cli chaincode query -C "$CH" -n qscc --hex \
            -c "{\"Args\":[\"GetBlockByNumber\",\"$CH\",\"$i\"]}" 2>>"${k}qscc.log" \
            | python3 -c 'import sys;sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))' >"${k}peer-blocks/$i.block" \
            || { fail "$kind: qscc GetBlockByNumber $i through the peer"; break; }
    done
    python3 "$HERE/txfilter.py" "${k}orderer.raw" "${k}peer-blocks" --txids "${k}txids.txt" --json "${k}summary.json" \
        >"${k}blocks.log" 2>&1 || { fail "$kind: txfilter.py: $(tail -3 "${k}blocks.log")"; stop_all; return; }
    local s="${k}summary.json" want=$((N + 2))
    local ob pb same txs valid invalid endorser nofilter badlen txids notvalid
    ob=$(jq .orderer_blocks "$s"); pb=$(jq .peer_blocks "$s"); same=$(jq .same_header_data "$s")
    txs=$(jq .txs "$s"); valid=$(jq .valid "$s"); invalid=$(jq .invalid "$s")
    endorser=$(jq '.types.ENDORSER_TRANSACTION // 0' "$s")
    nofilter=$(jq -c .blocks_without_filter "$s"); badlen=$(jq -c .filter_length_mismatch "$s")
    txids=$(jq .txids "$s"); notvalid=$(jq .txids_not_valid_once "$s")
    if [[ $pb == "$height" && $ob == "$pb" && $same == "$pb" && $(jq .numbering_ok "$s") == true ]]; then
        pass "$kind: the peer committed all $pb blocks our orderer delivers, header and data byte-identical"
    else
        fail "$kind: blocks: orderer $ob, peer $pb (getinfo height ${height:-?}), $same with equal header+data"
    fi
    if [[ $nofilter == "[]" && $badlen == "[]" && $invalid == 0 && $valid == "$txs" && $endorser == "$want" ]]; then
        pass "$kind: TRANSACTIONS_FILTER of all $pb blocks: $valid of $txs transactions VALID, 0 invalid; $endorser endorser transactions (instantiate + put + $N inc)"
    else
        fail "$kind: TRANSACTIONS_FILTER: $(jq -c '{txs, types, codes, blocks_without_filter, filter_length_mismatch}' "$s") (want $want endorser transactions, all VALID)"
    fi
    if [[ $txids == $((N + 1)) && $notvalid == 0 ]]; then
        pass "$kind: each of the $txids invocations' txids is VALID in exactly one block"
    else
        fail "$kind: $txids txids reported by the CLI (want $((N + 1))), $notvalid not VALID exactly once in the peer's blocks"
    fi

    # the state the transactions left, through the peer
    local bad=0 v
    for i in $(seq 1 "$WORKERS"); do
        v=$(query "k$i"); [[ $v == "$per" ]] || { bad=$((bad + 1)); echo "k$i = '$v', want $per" >>"${k}query.log"; }
    done
    v=$(query greeting)
    if [[ $bad == 0 && $v == hello ]]; then
        pass "$kind: peer chaincode query: each of the $WORKERS counters = $per (sum $N), greeting = hello"
    else
        fail "$kind: state: $bad counters wrong ($(head -2 "${k}query.log" 2>/dev/null | paste -sd' ')), greeting '$v'"
    fi
    echo "     ($kind: $((SECONDS - t0)) s from channel creation to the last check)"
    stop_all
}

run_kind solo InteropDevModeSolo
if [[ ${KAFKA:-1} != 0 ]]; then
    run_kind kafka InteropDevModeKafka
fi

echo
echo "chaincode.sh (Fabric $FABRIC_VERSION peer, dev mode): $PASSES PASS, ${#FAILS[@]} FAIL"
if ((${#FAILS[@]})); then
    printf '  FAIL %s\n' "${FAILS[@]}"; exit 1
fi
