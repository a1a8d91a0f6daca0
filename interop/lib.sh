# Shared helpers of the interop scripts (sourced, not run).

# interop_cache VERSION: the cache folder interop/fabric-tools.sh installs Fabric VERSION's tools into.
interop_cache() {
    case $1 in
        v2.5.16) echo "${FABRIC_INTEROP_CACHE:-$HOME/.cache/fabric-orderer-interop}" ;;
        v1.4.*)  echo "${FABRIC_INTEROP_CACHE:-$HOME/.cache/fabric-orderer-interop-$1}" ;;
        *) echo "FABRIC_VERSION must be v2.5.16 or v1.4.x" >&2; return 2 ;;
    esac
}

# interop_configtx_v14 PORT < configtx.yaml > configtx.yaml: interop/configtx.yaml for Fabric v1.4 tools.
# Fabric v1.4 peers refuse V2_x capabilities: use v1.4's (Channel V1_4_3, Orderer/Application V1_4_2).
# v1.4's configtxgen defaults an unset Orderer.Addresses to 127.0.0.1:7050 (v2.3+ does not, nor does
# ours): the orderer on PORT is listed there explicitly. SkipAsForeign is a v2.x key v1.4 refuses.
interop_configtx_v14() {
    awk -v port="$1" '
        /^        V2_0: true$/ { n++; print (n == 1 ? "        V1_4_3: true" : "        V1_4_2: true"); next }
        /^        V2_5: true$/ { print "        V1_4_2: true"; next }
        /^ *SkipAsForeign:/ { next }
        /^    Addresses:$/ { print; print "        - 127.0.0.1:" port; next }
        { print }'
}

# interop_configtx_brokers BROKERS < configtx.yaml > configtx.yaml: Orderer.Kafka.Brokers = BROKERS
# (comma-separated) in interop/configtx.yaml.
interop_configtx_brokers() {
    local list
    list=$(tr ',' '\n' <<<"$1" | sed 's/^/            - /')
    awk -v b="$list" '
        /^            - 127.0.0.1:9092$/ { print b; next }
        { print }'
}

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# interop_orderer_start OUR_BIN CFGDIR GENESIS LEDGER MSP PORT LOG [VAR=VALUE...]: our `orderer start` on
# 127.0.0.1:PORT, bootstrapped from GENESIS, ledger in LEDGER, local MSP folder MSP (MSP ID SampleOrg),
# FABRIC_CFG_PATH=CFGDIR, plus the given environment (e.g. ORDERER_KAFKA_*). Sets ORDERER_PID; returns 1
# if it has not logged `Beginning to serve requests` within 10 s.
interop_orderer_start() {
    local bin=$1 cfg=$2 genesis=$3 ledger=$4 msp=$5 port=$6 log=$7 i
    shift 7
    env FABRIC_CFG_PATH="$cfg" ORDERER_GENERAL_BOOTSTRAPFILE="$genesis" ORDERER_FILELEDGER_LOCATION="$ledger" \
        ORDERER_GENERAL_LOCALMSPDIR="$msp" ORDERER_GENERAL_LOCALMSPID=SampleOrg \
        ORDERER_GENERAL_LISTENADDRESS=127.0.0.1 ORDERER_GENERAL_LISTENPORT="$port" "$@" \
        "$bin/orderer" start >"$log" 2>&1 &
    ORDERER_PID=$!
    for i in $(seq 1 100); do
        grep -q "Beginning to serve requests" "$log" 2>/dev/null && return 0
        kill -0 "$ORDERER_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# interop_orderer_stop: stops the orderer interop_orderer_start started (if any).
interop_orderer_stop() {
    [[ -n ${ORDERER_PID:-} ]] && kill "$ORDERER_PID" 2>/dev/null && wait "$ORDERER_PID" 2>/dev/null
    ORDERER_PID=""
}

# interop_peer_start FBIN CFG MSP FSDIR LOG [ARGS...]: a Fabric peer `peer node start ARGS` (e.g.
# --peer-chaincodedev=true) with CFG's core.yaml (Fabric's sampleconfig), the local MSP folder MSP
# (MSP ID SampleOrg), its ledger in FSDIR, no TLS, no container runtime (CORE_VM_ENDPOINT empty), gossip
# without leader election (it is its org's leader: it pulls blocks from the orderer itself) and every
# address on a free port. Sets PEER_PID, PEER_ADDR (gRPC: endorser, deliver, admin) and PEER_CC_ADDR
# (where chaincodes connect); returns 1 if the peer has not logged its start within 20 s.
interop_peer_start() {
    local fbin=$1 cfg=$2 msp=$3 fs=$4 log=$5 i
    shift 5
    PEER_ADDR=127.0.0.1:$(free_port); PEER_CC_ADDR=127.0.0.1:$(free_port)
    FABRIC_CFG_PATH=$cfg FABRIC_LOGGING_SPEC=${PEER_LOGGING_SPEC:-info} CORE_PEER_ID=peer0.example.com \
    CORE_PEER_MSPCONFIGPATH=$msp CORE_PEER_LOCALMSPID=SampleOrg \
    CORE_PEER_LISTENADDRESS=$PEER_ADDR CORE_PEER_ADDRESS=$PEER_ADDR \
    CORE_PEER_CHAINCODELISTENADDRESS=$PEER_CC_ADDR CORE_PEER_CHAINCODEADDRESS=$PEER_CC_ADDR \
    CORE_PEER_GOSSIP_BOOTSTRAP=$PEER_ADDR CORE_PEER_GOSSIP_EXTERNALENDPOINT=$PEER_ADDR \
    CORE_PEER_GOSSIP_USELEADERELECTION=false CORE_PEER_GOSSIP_ORGLEADER=true \
    CORE_PEER_FILESYSTEMPATH=$fs CORE_LEDGER_SNAPSHOTS_ROOTDIR=$fs/snapshots \
    CORE_OPERATIONS_LISTENADDRESS=127.0.0.1:0 CORE_VM_ENDPOINT= CORE_PEER_TLS_ENABLED=false \
    "$fbin/peer" node start "$@" >"$log" 2>&1 &
    PEER_PID=$!
    for i in $(seq 1 200); do
        grep -q 'Started peer with ID' "$log" 2>/dev/null && return 0
        kill -0 "$PEER_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# interop_peer_stop: stops the peer interop_peer_start started (if any).
interop_peer_stop() {
    [[ -n ${PEER_PID:-} ]] && kill "$PEER_PID" 2>/dev/null && wait "$PEER_PID" 2>/dev/null
    PEER_PID=""
}

# interop_build_chaincode CACHE MANIFEST SRC OUT: builds the Go chaincode in folder SRC into the binary OUT
# with the Fabric v1.4.12 build module MANIFEST (interop/fabric-v1.4.12: its go.mod pins the shim's
# dependencies) and the module cache interop/fabric-tools.sh filled in CACHE, offline (GOPROXY=off,
# -mod=readonly: every module is checked against the committed go.sum).
interop_build_chaincode() {
    local cache=$1 manifest=$2 src=$3 out=$4 mod
    mod=$(mktemp -d "${TMPDIR:-/tmp}/interop-ccbuild.XXXXXX")
    cp "$manifest/go.mod" "$manifest/go.sum" "$mod/"
    mkdir "$mod/cc" && cp "$src"/*.go "$mod/cc/"
    ( cd "$mod" && GOPATH=$cache/gopath GOMODCACHE=$cache/gopath/pkg/mod GOCACHE=$cache/gocache \
        GOFLAGS="-buildvcs=false -mod=readonly" GOTOOLCHAIN=local GOPROXY=off GO111MODULE=on \
        go build -o "$out" ./cc )
    local rc=$?
    rm -rf "$mod"
    return $rc
}
