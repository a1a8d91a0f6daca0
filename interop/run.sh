#!/usr/bin/env bash
# Interop run: Fabric v2.5.16's (or, with FABRIC_VERSION=v1.4.12, v1.4.12's) own tools against OUR
# orderer and configtxgen.
#
#   interop/fabric-tools.sh                     # once: builds Fabric's tools into the cache
#   cargo build --release --bins                # our orderer, configtxgen, orderer-client
#   interop/run.sh [WORKDIR]                    # default WORKDIR: a fresh mktemp dir
#
# Env: OUR_BIN (default <repo>/target/release), PORT (default: a free port), FABRIC_INTEROP_CACHE,
#      FABRIC_VERSION (v2.5.16 default, or v1.4.x: the tools fabric-tools.sh installed for it; the
#      configtx then uses v1.4 capabilities), REFERENCE=0 / PEER=0 skip steps r / p.
# Steps (each prints PASS/FAIL; the script continues after a failure and exits 1 if any failed):
#   a  cryptogen material + Fabric configtxgen genesis (solo, system channel + consortium) boots our orderer
#   b  peer channel fetch oldest|newest|config|0 against our orderer; configtxlator decodes the blocks
#   c  orderer-client broadcast --count 100; peer channel fetch newest + decode
#   d  peer channel create with Fabric's -outputCreateChannelTx; fetch the new channel's block 0 + decode;
#      also a channel-creation tx made by OUR configtxgen
#   e  our configtxgen vs Fabric's configtxgen for the same profiles: decoded JSON compared after
#      removing timestamps, nonces, tx IDs, signatures and data hashes
#   f  Fabric's sample clients broadcast_msg / deliver_stdout against our orderer
#   g  peer channel update (anchor peers, from Fabric's configtxgen) + fetch config follows LAST_CONFIG;
#      restart of our orderer keeps every channel's height
#   p  a real Fabric peer (`peer node start`, PEER=0 skips it) joins the channel with block 0 from our orderer,
#      pulls and commits our blocks; `peer channel getinfo` height and hashes equal our orderer's
#   r  reference (REFERENCE=0 skips it): Fabric's own orderer v2.5.16 booted from the same genesis block,
#      the same steps; new channel's block 0, blocks' metadata and the config-update block compared with ours;
#      our orderer-client broadcast (with its Deliver follower) against Fabric's orderer
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"
FABRIC_VERSION=${FABRIC_VERSION:-v2.5.16}
case $FABRIC_VERSION in
    v2.5.16) CACHE=${FABRIC_INTEROP_CACHE:-$HOME/.cache/fabric-orderer-interop} ;;
    v1.4.*)  CACHE=${FABRIC_INTEROP_CACHE:-$HOME/.cache/fabric-orderer-interop-$FABRIC_VERSION} ;;
    *) echo "FABRIC_VERSION must be v2.5.16 or v1.4.x" >&2; exit 2 ;;
esac
FBIN=$CACHE/bin
OUR_BIN=$(cd "${OUR_BIN:-$REPO/target/release}" 2>/dev/null && pwd || echo "${OUR_BIN:-$REPO/target/release}")
W=${1:-$(mktemp -d /tmp/fabric-interop.XXXXXX)}
mkdir -p "$W"; W=$(cd "$W" && pwd)
SYS=system-channel
APP=interopch
FAILS=()

for t in configtxgen configtxlator cryptogen peer; do
    [[ -x $FBIN/$t ]] || { echo "missing $FBIN/$t: run interop/fabric-tools.sh" >&2; exit 2; }
done
for t in orderer configtxgen orderer-client; do
    [[ -x $OUR_BIN/$t ]] || { echo "missing $OUR_BIN/$t: cargo build --release --bins" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "jq is needed" >&2; exit 2; }

pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; FAILS+=("$*"); }
PORT=${PORT:-$(free_port)}
ORD=127.0.0.1:$PORT
echo "workdir $W, our binaries $OUR_BIN, Fabric tools $FBIN, orderer on $ORD"

# ---------- crypto + configtx ----------
cd "$W"
rm -rf crypto cfg
"$FBIN/cryptogen" generate --config="$HERE/crypto-config.yaml" --output=crypto >cryptogen.log 2>&1 \
    || { cat cryptogen.log; echo "cryptogen failed" >&2; exit 1; }
ORG=$W/crypto/ordererOrganizations/example.com
ORDERER_MSP=$ORG/orderers/orderer.example.com/msp
ADMIN_MSP=$ORG/users/Admin@example.com/msp
mkdir -p cfg empty
# OrdererEndpoints -> the port our orderer listens on, so that a peer (step p) finds it
sed "s/127.0.0.1:7050/127.0.0.1:$PORT/" "$HERE/configtx.yaml" >cfg/configtx.yaml
if [[ $FABRIC_VERSION == v1.4.* ]]; then   # v1.4 capabilities and Orderer.Addresses (interop/lib.sh)
    interop_configtx_v14 "$PORT" <cfg/configtx.yaml >cfg/configtx.yaml.v14 && mv cfg/configtx.yaml.v14 cfg/configtx.yaml
fi
cp -r "$ORG/msp" cfg/msp

fabric_ctg() { FABRIC_CFG_PATH=$W/cfg "$FBIN/configtxgen" "$@"; }
our_ctg() { "$OUR_BIN/configtxgen" -configPath "$W/cfg" "$@"; }
decode_block() { "$FBIN/configtxlator" proto_decode --type common.Block --input "$1" --output "$2"; }
decode_env() { "$FBIN/configtxlator" proto_decode --type common.Envelope --input "$1" --output "$2"; }

# Fabric peer CLI: sampleconfig's core.yaml, the org admin as identity
peer_cli() {
    FABRIC_CFG_PATH=$CACHE/sampleconfig CORE_PEER_MSPCONFIGPATH=$ADMIN_MSP CORE_PEER_LOCALMSPID=SampleOrg \
    FABRIC_LOGGING_SPEC=${PEER_LOGGING:-info} "$FBIN/peer" "$@"
}

ORDERER_PID=""
start_orderer() {   # $1 genesis block, $2 ledger dir, $3 log
    interop_orderer_start "$OUR_BIN" "$W/empty" "$1" "$2" "$ORDERER_MSP" "$PORT" "$3" FABRIC_ORDERER_DEV_DIR="$W/devdir"
}
stop_orderer() { interop_orderer_stop; }
trap stop_orderer EXIT

# ---------- (a) Fabric genesis boots our orderer ----------
fabric_ctg -profile InteropDevModeSolo -channelID $SYS -outputBlock fabric-genesis.block >a-configtxgen.log 2>&1 \
    || { cat a-configtxgen.log; echo "Fabric configtxgen failed" >&2; exit 1; }
if start_orderer "$W/fabric-genesis.block" "$W/ledger" "$W/orderer.log"; then
    pass "a: our orderer boots from Fabric configtxgen's genesis block (cryptogen MSP)"
else
    fail "a: our orderer did not start from Fabric's genesis block"; tail -20 "$W/orderer.log"; exit 1
fi

# ---------- (b) peer channel fetch ----------
for what in oldest newest config 0; do
    if peer_cli channel fetch $what "b-$what.block" -o $ORD -c $SYS >"b-fetch-$what.log" 2>&1 \
       && decode_block "b-$what.block" "b-$what.json" 2>>"b-fetch-$what.log"; then
        pass "b: peer channel fetch $what on $SYS + configtxlator decode"
    else
        fail "b: peer channel fetch $what on $SYS: $(grep -E 'Error|panic' "b-fetch-$what.log" | head -3)"
    fi
done
if [[ -f b-oldest.block ]] && cmp -s b-oldest.block fabric-genesis.block; then
    pass "b: fetched block 0 is byte-identical to Fabric's genesis block file"
else
    fail "b: fetched block 0 differs from fabric-genesis.block"
fi

# ---------- (c) our client broadcasts, Fabric's peer CLI fetches ----------
if "$OUR_BIN/orderer-client" --server $ORD --channel $SYS --mspdir "$ADMIN_MSP" --mspid SampleOrg \
      broadcast --count 100 --streams 2 --size 256 >c-broadcast.log 2>&1; then
    pass "c: orderer-client broadcast --count 100"
else
    fail "c: orderer-client broadcast: $(tail -3 c-broadcast.log)"
fi
if peer_cli channel fetch newest c-newest.block -o $ORD -c $SYS >c-fetch.log 2>&1 \
   && decode_block c-newest.block c-newest.json 2>>c-fetch.log; then
    n=$(jq -r .header.number c-newest.json); txs=$(jq '.data.data|length' c-newest.json)
    pass "c: peer channel fetch newest after broadcast: block $n with $txs envelopes decodes"
    for i in $(seq 1 "$n"); do
        peer_cli channel fetch "$i" "c-$i.block" -o $ORD -c $SYS >>c-fetch.log 2>&1 && decode_block "c-$i.block" "c-$i.json" \
            || { fail "c: fetch/decode block $i"; break; }
    done
    total=$(for i in $(seq 1 "$n"); do jq '.data.data|length' "c-$i.json"; done | paste -sd+ | bc)
    [[ $total == 100 ]] && pass "c: blocks 1..$n hold $total envelopes" || fail "c: blocks 1..$n hold $total envelopes, want 100"
else
    fail "c: peer channel fetch newest after broadcast: $(grep -E 'Error|panic' c-fetch.log | head -3)"
fi

# ---------- (d) channel creation ----------
fabric_ctg -profile InteropChannel -channelID $APP -outputCreateChannelTx fabric-$APP.tx >d-configtxgen.log 2>&1 \
    || fail "d: Fabric configtxgen -outputCreateChannelTx: $(tail -2 d-configtxgen.log)"
if peer_cli channel create -o $ORD -c $APP -f fabric-$APP.tx --outputBlock d-$APP-create.block >d-create.log 2>&1; then
    pass "d: peer channel create $APP (Fabric's channel tx)"
    if peer_cli channel fetch oldest d-$APP-0.block -o $ORD -c $APP >d-fetch.log 2>&1 \
       && decode_block d-$APP-0.block d-$APP-0.json 2>>d-fetch.log; then
        pass "d: peer channel fetch oldest on $APP + decode"
    else
        fail "d: fetch $APP block 0: $(grep -E 'Error|panic' d-fetch.log | head -3)"
    fi
    peer_cli channel fetch config d-$APP-config.block -o $ORD -c $APP >>d-fetch.log 2>&1 \
        && pass "d: peer channel fetch config on $APP" || fail "d: peer channel fetch config on $APP"
    "$OUR_BIN/orderer-client" --server $ORD --channel $APP --mspdir "$ADMIN_MSP" --mspid SampleOrg \
        broadcast --count 20 --streams 1 --size 128 >d-broadcast.log 2>&1 \
        && pass "d: broadcast 20 on $APP" || fail "d: broadcast on $APP: $(tail -3 d-broadcast.log)"
    peer_cli channel fetch newest d-$APP-newest.block -o $ORD -c $APP >>d-fetch.log 2>&1 \
        && decode_block d-$APP-newest.block d-$APP-newest.json \
        && pass "d: fetch newest on $APP: block $(jq -r .header.number d-$APP-newest.json)" \
        || fail "d: fetch newest on $APP"
else
    fail "d: peer channel create $APP: $(grep -E 'Error|panic' d-create.log | head -3)"
fi
APP2=${APP}2
if our_ctg -profile InteropChannel -channelID $APP2 -outputCreateChannelTx our-$APP2.tx >d2-configtxgen.log 2>&1 \
   && peer_cli channel create -o $ORD -c $APP2 -f our-$APP2.tx --outputBlock d-$APP2-create.block >d2-create.log 2>&1 \
   && decode_block d-$APP2-create.block d-$APP2-0.json; then
    pass "d: peer channel create $APP2 with OUR configtxgen's channel tx"
else
    fail "d: channel create with our channel tx: $(cat d2-configtxgen.log | tail -2; grep -E 'Error|panic' d2-create.log | head -3)"
fi

# ---------- (f) Fabric's sample clients ----------
SC_ENV=(env FABRIC_CFG_PATH=$CACHE/sampleconfig ORDERER_GENERAL_LOCALMSPDIR=$ADMIN_MSP ORDERER_GENERAL_LOCALMSPID=SampleOrg)
if timeout 60 "${SC_ENV[@]}" "$FBIN/broadcast_msg" -server $ORD -channelID $APP -messages 200 -goroutines 2 -size 512 \
      >f-broadcast_msg.log 2>&1 && grep -q '200 / 200' f-broadcast_msg.log && ! grep -qi 'error\|unexpected status' f-broadcast_msg.log; then
    pass "f: Fabric broadcast_msg -messages 200 on $APP"
else
    fail "f: Fabric broadcast_msg: $(grep -i 'error\|status' f-broadcast_msg.log | head -3)"
fi
sleep 2.5   # BatchTimeout 2s: let the last block be cut
H=$(peer_cli channel fetch newest f-newest.block -o $ORD -c $APP 2>&1 | sed -n 's/.*Received block: \([0-9]*\).*/\1/p' | tail -1)
# deliver_stdout blocks forever after the newest block (BLOCK_UNTIL_READY to MaxUint64): stop it after a while
timeout 10 "${SC_ENV[@]}" "$FBIN/deliver_stdout" -server $ORD -channelID $APP -seek -2 -quiet >f-deliver_stdout.log 2>&1
got=$(grep -c 'Received block' f-deliver_stdout.log)
if [[ -n $H && $got == $((H + 1)) ]] && grep -q 'Received block:  0$' f-deliver_stdout.log; then
    pass "f: Fabric deliver_stdout -seek -2 on $APP received blocks 0..$H"
else
    fail "f: Fabric deliver_stdout: got $got blocks, newest is ${H:-?}: $(grep -iv 'Received block' f-deliver_stdout.log | head -3)"
fi

# ---------- (g) config update through Fabric's peer CLI; restart ----------
fabric_ctg -profile InteropChannel -channelID $APP -asOrg SampleOrg -outputAnchorPeersUpdate g-anchors.tx >g-configtxgen.log 2>&1 \
    || fail "g: Fabric configtxgen -outputAnchorPeersUpdate: $(tail -2 g-configtxgen.log)"
if peer_cli channel update -o $ORD -c $APP -f g-anchors.tx >g-update.log 2>&1; then
    pass "g: peer channel update (anchor peers) on $APP"
    sleep 0.5
    peer_cli channel fetch config g-config.block -o $ORD -c $APP >g-fetch.log 2>&1 && decode_block g-config.block g-config.json
    n=$(jq -r .header.number g-config.json 2>/dev/null); seq=$(jq -r .data.data[0].payload.data.config.sequence g-config.json 2>/dev/null)
    anch=$(jq -r '.data.data[0].payload.data.config.channel_group.groups.Application.groups.SampleOrg.values.AnchorPeers.value.anchor_peers[0].port' g-config.json 2>/dev/null)
    seq0=$(jq -r .data.data[0].payload.data.config.sequence d-$APP-0.json 2>/dev/null)
    if [[ $n == $((H + 1)) && $seq == $((seq0 + 1)) && $anch == 7051 ]]; then
        pass "g: peer channel fetch config follows LAST_CONFIG to block $n (sequence $seq, anchor peer present)"
    else
        fail "g: fetch config after update: block ${n:-?} (want $((H + 1))), sequence ${seq:-?} (want $((seq0 + 1))), anchor port ${anch:-?}"
    fi
else
    fail "g: peer channel update: $(grep -E 'Error|panic' g-update.log | head -3)"
fi
# ---------- (p) a real Fabric peer joins $APP and commits the blocks our orderer made ----------
PEER_PID=""
stop_peer() { interop_peer_stop; }
if [[ ${PEER:-1} == 1 ]]; then
    rm -rf "$W/peer-fs"
    trap 'stop_orderer; stop_peer' EXIT
    if interop_peer_start "$FBIN" "$CACHE/sampleconfig" "$ORG/orderers/peer0.example.com/msp" "$W/peer-fs" "$W/p-peer.log"; then
        pass "p: Fabric peer node start (cryptogen identity, sampleconfig core.yaml + CORE_* overrides)"
    else
        fail "p: Fabric peer does not start: $(grep -E 'PANI|ERRO|FATA' p-peer.log | head -3)"
    fi
    if CORE_PEER_ADDRESS=$PEER_ADDR peer_cli channel join -b d-$APP-0.block >p-join.log 2>&1; then
        pass "p: peer channel join -b <$APP block 0 fetched from our orderer>"
    else
        fail "p: peer channel join: $(grep -E 'Error' p-join.log | head -2)"
    fi
    peer_cli channel fetch newest p-newest.block -o $ORD -c $APP >p-fetch.log 2>&1 && decode_block p-newest.block p-newest.json
    want=$(( $(jq -r .header.number p-newest.json) + 1 ))
    got=""
    for _ in $(seq 1 60); do
        CORE_PEER_ADDRESS=$PEER_ADDR peer_cli channel getinfo -c $APP >p-getinfo.log 2>&1
        got=$(sed -n 's/.*Blockchain info: //p' p-getinfo.log | jq -r .height 2>/dev/null)
        [[ $got == "$want" ]] && break
        sleep 1
    done
    cur=$(sed -n 's/.*Blockchain info: //p' p-getinfo.log | jq -r .currentBlockHash 2>/dev/null)
    prev=$(sed -n 's/.*Blockchain info: //p' p-getinfo.log | jq -r .previousBlockHash 2>/dev/null)
    if [[ $got == "$want" && $cur == "$(python3 "$HERE/blockcmp.py" --header-hash p-newest.block)" \
          && $prev == "$(jq -r .header.previous_hash p-newest.json)" ]]; then
        pass "p: peer channel getinfo -c $APP: height $got = our orderer's, currentBlockHash/previousBlockHash = our newest block's"
    else
        fail "p: peer height ${got:-?} (our orderer: $want), hashes $cur/$prev: $(grep -E 'ERRO|WARN' p-peer.log | grep -v -i 'gossip\|anchor' | head -3)"
    fi
    # the peer verified our signatures (BlockValidation) and committed every block; count its invalid-tx marks
    committed=$(grep -c 'Committed block \[' p-peer.log)
    ((committed >= want - 1)) && pass "p: the peer validated and committed $committed blocks from our orderer (block signatures checked against /Channel/Orderer/BlockValidation)" \
        || fail "p: the peer committed $committed blocks, want $((want - 1)): $(grep -E 'ERRO' p-peer.log | head -3)"
    stop_peer
fi
heights() { for c in $SYS $APP $APP2; do peer_cli channel fetch newest /dev/null -o $ORD -c $c 2>&1 | sed -n 's/.*Received block: \([0-9]*\).*/\1/p' | tail -1; done | paste -sd' '; }
before=$(heights)
stop_orderer
if start_orderer "$W/fabric-genesis.block" "$W/ledger" "$W/orderer-restart.log"; then
    after=$(heights)
    [[ $before == "$after" ]] && pass "g: restart keeps newest blocks ($SYS $APP $APP2: $after)" \
        || fail "g: newest blocks before restart '$before', after '$after'"
else
    fail "g: our orderer does not restart on its ledger: $(tail -3 orderer-restart.log)"
fi
stop_orderer

# ---------- (e) our configtxgen vs Fabric's ----------
# normalise: drop what legitimately differs between two runs (timestamps, nonces, tx ids, signatures,
# data/previous hashes, block metadata)
NORM='del(.. | .timestamp?, .nonce?, .tx_id?, .signature?, .data_hash?, .previous_hash?) | del(.metadata)'
compare() {   # $1 label, $2 fabric file, $3 our file, $4 type
    "$FBIN/configtxlator" proto_decode --type "$4" --input "$2" --output "e-$1.fabric.json" 2>"e-$1.err" \
        || { fail "e: $1: Fabric's output does not decode: $(cat e-$1.err)"; return; }
    "$FBIN/configtxlator" proto_decode --type "$4" --input "$3" --output "e-$1.ours.json" 2>"e-$1.err" \
        || { fail "e: $1: OUR output does not decode with configtxlator: $(cat e-$1.err)"; return; }
    jq -S "$NORM" "e-$1.fabric.json" >"e-$1.fabric.norm.json"
    jq -S "$NORM" "e-$1.ours.json" >"e-$1.ours.norm.json"
    if diff -u "e-$1.fabric.norm.json" "e-$1.ours.norm.json" >"e-$1.diff"; then
        pass "e: $1: decoded JSON equal (after removing timestamps/nonces/txids/signatures/hashes)"
    else
        fail "e: $1: decoded JSON differs ($(grep -c '^[-+][^-+]' "e-$1.diff") lines, see $W/e-$1.diff)"
    fi
    cmp -s "$2" "$3" && echo "     (files byte-identical)"
}
for prof in InteropDevModeSolo InteropDevModeKafka; do
    fabric_ctg -profile $prof -channelID $SYS -outputBlock e-$prof.fabric.block >e-gen.log 2>&1 || fail "e: Fabric configtxgen $prof"
    our_ctg -profile $prof -channelID $SYS -outputBlock e-$prof.ours.block >>e-gen.log 2>&1 || fail "e: our configtxgen $prof: $(tail -2 e-gen.log)"
    [[ -f e-$prof.fabric.block && -f e-$prof.ours.block ]] && compare "$prof-genesis" e-$prof.fabric.block e-$prof.ours.block common.Block
done
# Fabric's own sampleconfig/configtx.yaml (its msp/ beside it), every profile that needs no etcdraft certs
SAMPLE_PROFILES="SampleSingleMSPSolo SampleSingleMSPKafka SampleInsecureSolo SampleInsecureKafka SampleDevModeSolo SampleDevModeKafka SampleAppChannelInsecureSolo"
# Fabric v1.4's sample profiles leave Orderer.Addresses unset, which v1.4's configtxgen turns into
# 127.0.0.1:7050 and v2.3+ (and ours) do not: a known, documented difference, so they are compared
# against v2.5.16 only.
[[ $FABRIC_VERSION == v1.4.* ]] && SAMPLE_PROFILES=""
for prof in $SAMPLE_PROFILES; do
    FABRIC_CFG_PATH=$CACHE/sampleconfig "$FBIN/configtxgen" -profile $prof -channelID $SYS -outputBlock e-s-$prof.fabric.block >>e-gen.log 2>&1 \
        || fail "e: Fabric configtxgen sampleconfig $prof"
    "$OUR_BIN/configtxgen" -configPath "$CACHE/sampleconfig" -profile $prof -channelID $SYS -outputBlock e-s-$prof.ours.block >>e-gen.log 2>&1 \
        || fail "e: our configtxgen sampleconfig $prof: $(tail -2 e-gen.log)"
    [[ -f e-s-$prof.fabric.block && -f e-s-$prof.ours.block ]] && compare "sampleconfig-$prof" e-s-$prof.fabric.block e-s-$prof.ours.block common.Block
done
FABRIC_CFG_PATH=$CACHE/sampleconfig "$FBIN/configtxgen" -profile SampleSingleMSPChannel -channelID ch1 -outputCreateChannelTx e-s-ch.fabric.tx >>e-gen.log 2>&1
"$OUR_BIN/configtxgen" -configPath "$CACHE/sampleconfig" -profile SampleSingleMSPChannel -channelID ch1 -outputCreateChannelTx e-s-ch.ours.tx >>e-gen.log 2>&1
[[ -f e-s-ch.fabric.tx && -f e-s-ch.ours.tx ]] && compare "sampleconfig-SampleSingleMSPChannel-createtx" e-s-ch.fabric.tx e-s-ch.ours.tx common.Envelope
our_ctg -profile InteropChannel -channelID $APP -outputCreateChannelTx e-$APP.ours.tx >>e-gen.log 2>&1 || fail "e: our configtxgen channel tx"
[[ -f e-$APP.ours.tx ]] && compare "InteropChannel-createtx" fabric-$APP.tx e-$APP.ours.tx common.Envelope

# Fabric's configtxgen must accept our genesis block too
fabric_ctg -inspectBlock e-InteropDevModeSolo.ours.block >e-inspect-ours.json 2>e-inspect-ours.err \
    && pass "e: Fabric configtxgen -inspectBlock reads OUR genesis block" \
    || fail "e: Fabric configtxgen -inspectBlock on our block: $(tail -2 e-inspect-ours.err)"
# our orderer boots from our genesis block (sanity) and Fabric's peer fetches it
if start_orderer "$W/e-InteropDevModeSolo.ours.block" "$W/ledger-ours" "$W/orderer-ours.log"; then
    peer_cli channel fetch oldest e-ours-0.block -o $ORD -c $SYS >e-fetch-ours.log 2>&1 \
        && cmp -s e-ours-0.block e-InteropDevModeSolo.ours.block \
        && pass "e: our genesis boots our orderer; peer channel fetch oldest returns it byte-identical" \
        || fail "e: fetch from our orderer booted from our genesis: $(grep -E 'Error' e-fetch-ours.log | head -2)"
    stop_orderer
else
    fail "e: our orderer does not boot from our configtxgen's genesis: $(tail -3 orderer-ours.log)"
fi

# ---------- (r) reference: Fabric's own orderer, same genesis, same steps ----------
FPID=""
if [[ ${REFERENCE:-1} == 1 && -x $FBIN/orderer ]]; then
    FPORT=$(free_port); FORD=127.0.0.1:$FPORT
    FABRIC_CFG_PATH=$CACHE/sampleconfig ORDERER_GENERAL_LISTENPORT=$FPORT ORDERER_GENERAL_BOOTSTRAPMETHOD=file \
    ORDERER_GENERAL_GENESISMETHOD=file ORDERER_GENERAL_GENESISFILE=$W/fabric-genesis.block \
    ORDERER_GENERAL_BOOTSTRAPFILE=$W/fabric-genesis.block ORDERER_GENERAL_LOCALMSPDIR=$ORDERER_MSP \
    ORDERER_GENERAL_LOCALMSPID=SampleOrg ORDERER_FILELEDGER_LOCATION=$W/fabric-ledger \
    ORDERER_OPERATIONS_LISTENADDRESS=127.0.0.1:0 ORDERER_ADMIN_LISTENADDRESS=127.0.0.1:0 \
    "$FBIN/orderer" >r-fabric-orderer.log 2>&1 &
    FPID=$!
    for _ in $(seq 1 100); do grep -q 'Beginning to serve requests' r-fabric-orderer.log && break; sleep 0.1; done
    trap 'stop_orderer; [[ -n $FPID ]] && kill $FPID 2>/dev/null' EXIT
    RAPP=$APP
    peer_cli channel create -o $FORD -c $RAPP -f fabric-$APP.tx --outputBlock r-$RAPP-0.block >r-create.log 2>&1 \
        || fail "r: (Fabric orderer) peer channel create: $(grep Error r-create.log | head -2)"
    "$OUR_BIN/orderer-client" --server $FORD --channel $RAPP --mspdir "$ADMIN_MSP" --mspid SampleOrg \
        broadcast --count 20 --streams 1 --size 128 --no-follow >r-broadcast.log 2>&1 \
        || fail "r: our orderer-client --no-follow against Fabric's orderer: $(tail -2 r-broadcast.log)"
    sleep 2.5
    peer_cli channel fetch 1 r-1.block -o $FORD -c $RAPP >r-fetch.log 2>&1
    peer_cli channel update -o $FORD -c $RAPP -f g-anchors.tx >r-update.log 2>&1
    sleep 0.5
    peer_cli channel fetch config r-config.block -o $FORD -c $RAPP >>r-fetch.log 2>&1
    rcmp() {   # $1 label, $2 Fabric's block, $3 our block, $4 "nometa": block numbers differ, skip metadata
        decode_block "$2" "r-$1.fabric.json" && decode_block "$3" "r-$1.ours.json" || { fail "r: $1: decode"; return; }
        jq -S "$NORM | del(.header.number)" "r-$1.fabric.json" >"r-$1.fabric.norm.json"
        jq -S "$NORM | del(.header.number)" "r-$1.ours.json" >"r-$1.ours.norm.json"
        diff -u "r-$1.fabric.norm.json" "r-$1.ours.norm.json" >"r-$1.diff" \
            && pass "r: $1: our orderer's block equals Fabric orderer's (data, headers; signatures/timestamps removed)" \
            || fail "r: $1: differs from Fabric orderer's, see $W/r-$1.diff"
        [[ ${4:-} == nometa ]] && return
        # block metadata: decode each entry as common.Metadata; compare value and signature count
        for i in 0 1 2 3 4; do
            for who in fabric ours; do
                jq -r ".metadata.metadata[$i] // \"\"" "r-$1.$who.json" | base64 -d >"r-md.bin"
                "$FBIN/configtxlator" proto_decode --type common.Metadata --input r-md.bin 2>/dev/null \
                    | jq -c '{value, n: (.signatures // [] | length)}'
            done | uniq | wc -l | grep -qx 1 || fail "r: $1: block metadata[$i] differs from Fabric orderer's"
        done
    }
    [[ -f r-$RAPP-0.block ]] && rcmp new-channel-block0 r-$RAPP-0.block d-$APP-0.block
    [[ -f r-config.block && -f g-config.block ]] && rcmp config-update-block r-config.block g-config.block nometa
    if [[ -f r-1.block ]]; then
        decode_block r-1.block r-1.json
        decode_block c-1.block c-1.ours.json 2>/dev/null
        for i in 0 1 2 3 4; do
            for f in r-1.json c-1.ours.json; do
                jq -r ".metadata.metadata[$i] // \"\"" $f | base64 -d >r-md.bin
                "$FBIN/configtxlator" proto_decode --type common.Metadata --input r-md.bin 2>/dev/null | jq -c '{value, n: (.signatures // [] | length)}'
            done | uniq | wc -l | grep -qx 1 || fail "r: normal block metadata[$i] differs from Fabric orderer's"
        done
        pass "r: normal block metadata layout compared with Fabric orderer's (SIGNATURES value, LAST_CONFIG, 5 entries)"
    fi
    # our load generator follows Deliver while it broadcasts: against Fabric's orderer
    if timeout 30 "$OUR_BIN/orderer-client" --server $FORD --channel $RAPP --mspdir "$ADMIN_MSP" --mspid SampleOrg \
          broadcast --count 20 --streams 1 --size 128 >r-broadcast-follow.log 2>&1; then
        pass "r: our orderer-client broadcast (with Deliver follower) against Fabric's orderer"
    else
        fail "r: our orderer-client broadcast (with Deliver follower) against Fabric's orderer: hangs (timeout 30 s; $(grep -c . r-broadcast-follow.log) lines of output)"
    fi
    kill $FPID 2>/dev/null; wait $FPID 2>/dev/null; FPID=""
fi

echo
if ((${#FAILS[@]})); then
    echo "${#FAILS[@]} FAILED:"; printf '  %s\n' "${FAILS[@]}"; exit 1
fi
echo "all interop checks passed"
