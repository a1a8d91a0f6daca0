#!/usr/bin/env python3
"""Compares Fabric blocks fetched from two ordering service nodes, byte by byte.

    blockcmp.py A.block B.block        exit 0 when equal as described below, 1 otherwise
    blockcmp.py --header-hash B.block  base64 of the block's hash (SHA-256 of its header's DER)

A `common.Block` is split at the wire level (no protobuf library, no re-encoding):
  header (field 1) and data (field 2) must be byte-identical;
  metadata (field 3, `BlockMetadata.metadata` repeated bytes): entry 0 (SIGNATURES) and entry 1
  (LAST_CONFIG) are `common.Metadata{value, signatures}`: their `value` must be identical (for
  SIGNATURES that is `OrdererBlockMetadata{last_config, consenter_metadata}`, so the Kafka offsets
  recorded by both nodes are compared too); the signatures are each node's own and may differ.
  The other entries must be byte-identical.

Prints one line: `equal number=N kafka=(persisted,original,resubmitted)` or what differs.

    blockcmp.py --fabric-restarted FABRIC.block OURS.block

as above, but also accepts one known difference: Fabric's orderer writes no
LastResubmittedConfigOffset into a block cut by a time-to-cut message, and after a restart it reads
its offsets back from its last block, so a Fabric OSN restarted from such a block records 0 where an
OSN that kept running records the value it holds (two Fabric OSNs differ the same way). Accepted only
when that field is the one difference and Fabric's value is 0; printed as `equal-after-restart`.
"""
import hashlib
import sys


def varint(b, i):
    shift = result = 0
    while True:
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        if c < 0x80:
            return result, i
        shift += 7


def fields(b):
    """[(field number, wire type, value bytes or int)] of one message, in order."""
    out, i = [], 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        out.append((num, wt, v))
    return out


def first(fs, num, default=b""):
    for n, _, v in fs:
        if n == num:
            return v
    return default


def split(path):
    raw = open(path, "rb").read()
    fs = fields(raw)
    header, data, md = first(fs, 1), first(fs, 2), first(fs, 3)
    entries = [v for n, _, v in fields(md) if n == 1]
    return header, data, entries


def signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def kafka_offsets(sig_value):
    """OrdererBlockMetadata.consenter_metadata is a common.Metadata whose value is KafkaMetadata
    (offsets as (persisted, original, resubmitted)), or None."""
    cm = first(fields(sig_value), 2, None)
    value = first(fields(cm), 1, None) if cm else None
    if not value:
        return None
    kf = fields(value)
    return tuple(signed(first(kf, k, 0)) for k in (1, 2, 3))


def legacy_offsets(entry):
    """The ORDERER slot (index 3): a common.Metadata whose value is KafkaMetadata, or None."""
    value = first(fields(entry), 1, None)
    if not value:
        return None
    kf = fields(value)
    return tuple(signed(first(kf, k, 0)) for k in (1, 2, 3))


def only_restart_lrco(ha, da, ma, hb, db, mb):
    """True when the blocks differ only in LastResubmittedConfigOffset, 0 on Fabric's side (a)."""
    if ha != hb or da != db or len(ma) != len(mb) or not ma:
        return False
    sa, sb = first(fields(ma[0]), 1), first(fields(mb[0]), 1)
    if first(fields(sa), 1) != first(fields(sb), 1):     # OrdererBlockMetadata.last_config
        return False
    pairs = [(kafka_offsets(sa), kafka_offsets(sb))]
    for i, (x, y) in enumerate(zip(ma, mb)):
        if i == 3 and x != y:
            pairs.append((legacy_offsets(x), legacy_offsets(y)))
        elif i not in (0, 3) and (first(fields(x), 1) if i == 1 else x) != (first(fields(y), 1) if i == 1 else y):
            return False
    return all(p and q and p[:2] == q[:2] and p[2] == 0 and q[2] != 0 for p, q in pairs)


def main(a, b, fabric_restarted=False):
    ha, da, ma = split(a)
    hb, db, mb = split(b)
    problems = []
    if ha != hb:
        problems.append("header differs")
    if da != db:
        problems.append("data differs (%d vs %d bytes)" % (len(da), len(db)))
    if len(ma) != len(mb):
        problems.append("metadata has %d vs %d entries" % (len(ma), len(mb)))
    for i, (x, y) in enumerate(zip(ma, mb)):
        if i in (0, 1):
            vx, vy = first(fields(x), 1), first(fields(y), 1)
            if vx != vy:
                problems.append("metadata[%d] value differs (%s vs %s)" % (i, vx.hex(), vy.hex()))
        elif x != y:
            problems.append("metadata[%d] differs" % i)
    num = first(fields(ha), 1, 0)
    kafka = kafka_offsets(first(fields(ma[0]), 1)) if ma else None
    if problems and fabric_restarted and only_restart_lrco(ha, da, ma, hb, db, mb):
        print("equal-after-restart number=%d kafka=%s vs %s (Fabric's OSN restarted from a time-to-cut "
              "block records no LastResubmittedConfigOffset) header+data sha256=%s" % (
                  num, kafka, kafka_offsets(first(fields(mb[0]), 1)), hashlib.sha256(ha + da).hexdigest()[:16]))
        return 0
    if problems:
        print("DIFFER number=%s: %s" % (num, "; ".join(problems)))
        return 1
    print("equal number=%d kafka=%s header+data sha256=%s" % (
        num, kafka, hashlib.sha256(ha + da).hexdigest()[:16]))
    return 0


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def header_hash(path):
    """SHA-256 of the header's ASN.1 DER (number, previous_hash, data_hash): Fabric's block hash."""
    hf = fields(split(path)[0])
    num = first(hf, 1, 0)
    nb = num.to_bytes(max(1, (num.bit_length() + 8) // 8), "big")   # a leading 0 bit: positive
    body = b"\x02" + der_len(len(nb)) + nb
    for f in (first(hf, 2), first(hf, 3)):
        body += b"\x04" + der_len(len(f)) + f
    return hashlib.sha256(b"\x30" + der_len(len(body)) + body).digest()


if __name__ == "__main__":
    if sys.argv[1] == "--header-hash":   # blockcmp.py --header-hash BLOCK: base64 of the block hash
        import base64
        print(base64.b64encode(header_hash(sys.argv[2])).decode())
        sys.exit(0)
    if sys.argv[1] == "--fabric-restarted":
        sys.exit(main(sys.argv[2], sys.argv[3], fabric_restarted=True))
    sys.exit(main(sys.argv[1], sys.argv[2]))
