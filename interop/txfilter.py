#!/usr/bin/env python3
"""Counts the validation codes a Fabric peer wrote into its blocks and compares its blocks with the orderer's.

    txfilter.py ORDERER_RAW PEER_DIR [--txids FILE] [--json OUT]

ORDERER_RAW: the channel's blocks as the orderer delivers them (`orderer-client deliver --raw-out`: each
block's bytes after a 4-byte big-endian length). PEER_DIR: the same channel's blocks as the peer stored
them, one file per block named <number>.block (`peer chaincode query -n qscc GetBlockByNumber --hex`).
FILE: transaction IDs, one a line, that must each be in exactly one of the peer's blocks, marked VALID.

For every block it prints one line: number, transactions by header type, the peer's TRANSACTIONS_FILTER
(block metadata index 2: one validation code per transaction) and whether header and data are the
orderer's bytes. The last line is a JSON summary (also written to OUT) that the caller checks.

The protobuf wire format is read directly; field numbers are those of Fabric's common.Block,
common.BlockHeader, common.BlockData, common.BlockMetadata, common.Envelope, common.Payload,
common.Header and common.ChannelHeader. The code names are peer.TxValidationCode's.
"""
import argparse
import json
import os
import struct
import sys
from collections import Counter

HEADER_TYPES = {0: "MESSAGE", 1: "CONFIG", 2: "CONFIG_UPDATE", 3: "ENDORSER_TRANSACTION",
                4: "ORDERER_TRANSACTION", 5: "DELIVER_SEEK_INFO", 6: "CHAINCODE_PACKAGE"}
CODES = {0: "VALID", 1: "NIL_ENVELOPE", 2: "BAD_PAYLOAD", 3: "BAD_COMMON_HEADER", 4: "BAD_CREATOR_SIGNATURE",
         5: "INVALID_ENDORSER_TRANSACTION", 6: "INVALID_CONFIG_TRANSACTION", 7: "UNSUPPORTED_TX_PAYLOAD",
         8: "BAD_PROPOSAL_TXID", 9: "DUPLICATE_TXID", 10: "ENDORSEMENT_POLICY_FAILURE", 11: "MVCC_READ_CONFLICT",
         12: "PHANTOM_READ_CONFLICT", 13: "UNKNOWN_TX_TYPE", 14: "TARGET_CHAIN_NOT_FOUND", 15: "MARSHAL_TX_ERROR",
         16: "NIL_TXACTION", 17: "EXPIRED_CHAINCODE", 18: "CHAINCODE_VERSION_CONFLICT",
         19: "BAD_HEADER_EXTENSION", 20: "BAD_CHANNEL_HEADER", 21: "BAD_RESPONSE_PAYLOAD", 22: "BAD_RWSET",
         23: "ILLEGAL_WRITESET", 24: "INVALID_WRITESET", 254: "NOT_VALIDATED", 255: "INVALID_OTHER_REASON"}


def varint(b, i):
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if not c & 0x80:
            return v, i


def fields(b):
    """(field number, value) of a message: int for varints, bytes for length-delimited fields."""
    i, out = 0, []
    while i < len(b):
        key, i = varint(b, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(b, i)
        elif wire == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire} at offset {i}")
        out.append((num, v))
    return out


def first(b, num, default=b""):
    return next((v for n, v in fields(b) if n == num), default)


def every(b, num):
    return [v for n, v in fields(b) if n == num]


class Block:
    def __init__(self, raw):
        self.raw = raw
        self.header = first(raw, 1)
        self.data = first(raw, 2)
        self.number = first(self.header, 1, 0)
        self.envelopes = every(self.data, 1)
        self.metadata = every(first(raw, 3), 1)
        self.txs = []   # (header type, tx id)
        for env in self.envelopes:
            chdr = first(first(first(env, 1), 1), 1)
            self.txs.append((first(chdr, 1, 0), first(chdr, 5).decode(errors="replace")))

    def tx_filter(self):
        return self.metadata[2] if len(self.metadata) > 2 else b""


def read_stream(path):
    b, i, out = open(path, "rb").read(), 0, []
    while i < len(b):
        n = struct.unpack(">I", b[i:i + 4])[0]
        out.append(Block(b[i + 4:i + 4 + n]))
        i += 4 + n
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("orderer_raw")
    ap.add_argument("peer_dir")
    ap.add_argument("--txids")
    ap.add_argument("--json")
    a = ap.parse_args()

    ordered = read_stream(a.orderer_raw)
    peer = []
    while os.path.exists(os.path.join(a.peer_dir, f"{len(peer)}.block")):
        peer.append(Block(open(os.path.join(a.peer_dir, f"{len(peer)}.block"), "rb").read()))

    codes, types = Counter(), Counter()
    same, numbering_ok, filter_len_bad, no_filter = 0, True, [], []
    valid_txids = Counter()
    for k, blk in enumerate(peer):
        numbering_ok &= blk.number == k
        o = ordered[k] if k < len(ordered) else None
        equal = o is not None and o.header == blk.header and o.data == blk.data
        same += equal
        flt = blk.tx_filter()
        if not flt:
            no_filter.append(k)
        elif len(flt) != len(blk.txs):
            filter_len_bad.append(k)
        for t, (typ, txid) in enumerate(blk.txs):
            types[HEADER_TYPES.get(typ, str(typ))] += 1
            if t < len(flt):
                codes[CODES.get(flt[t], str(flt[t]))] += 1
                if flt[t] == 0:
                    valid_txids[txid] += 1
        kinds = Counter(HEADER_TYPES.get(t, str(t)) for t, _ in blk.txs)
        print(f"block {blk.number}: {len(blk.txs)} txs {dict(kinds)} filter "
              f"[{','.join(CODES.get(c, str(c)) for c in flt) or 'none'}] "
              f"{'= orderer header+data' if equal else 'DIFFERS from the orderer block'}")

    summary = {
        "orderer_blocks": len(ordered), "peer_blocks": len(peer), "numbering_ok": numbering_ok,
        "same_header_data": same, "txs": sum(types.values()), "types": dict(types), "codes": dict(codes),
        "valid": codes.get("VALID", 0), "invalid": sum(v for c, v in codes.items() if c != "VALID"),
        "blocks_without_filter": no_filter, "filter_length_mismatch": filter_len_bad,
    }
    if a.txids:
        want = [l.strip() for l in open(a.txids) if l.strip()]
        summary["txids"] = len(want)
        summary["txids_not_valid_once"] = sum(1 for t in want if valid_txids[t] != 1)
    line = json.dumps(summary, sort_keys=True)
    print(line)
    if a.json:
        open(a.json, "w").write(line + "\n")


if __name__ == "__main__":
    sys.exit(main())
