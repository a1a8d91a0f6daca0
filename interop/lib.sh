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
