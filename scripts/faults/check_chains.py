#!/usr/bin/env python3
"""Independent chain checker for the fault-injection runs (scripts/faults.sh).

Shares no code with the orderer: its own protobuf wire decoding, its own ASN.1
DER encoding of Fabric's block header and its own SHA-256 hash chain.

Input: one raw block file per OSN (`orderer-client deliver --raw-out`: each
block is a 4-byte big-endian length followed by the marshaled common.Block),
the load generators' ack logs (one acknowledged transaction ID per line), and
with --duplicates resent their resend logs (`orderer-client broadcast
--resend-log`: one line per re-send of a transaction ID, written before the
copy is sent).

Checks, for every OSN:
  * blocks are numbered 0, 1, 2, ... with no gap;
  * header.data_hash == SHA-256(concatenation of the block's envelopes);
  * header.previous_hash == SHA-256(DER(previous header)), where
    DER(header) = SEQUENCE { INTEGER number, OCTET STRING previous_hash,
                             OCTET STRING data_hash }   (Fabric's BlockHeaderBytes);
  * no transaction ID occurs twice in the chain ("duplicated"): the mode
    `--duplicates none` (default) for a channel with the orderer's exactly-once
    window on (the RS_EXACTLY_ONCE orderer capability). With `--duplicates
    resent`, for a channel without it (the default, as Fabric's OSN: every
    copy a client sends is ordered), a transaction ID may occur up to 1 + the
    number of times a client re-sent it, and every copy must be byte-identical
    to the first; extra copies beyond that, or copies with other bytes under
    the same ID, are "duplicated"; the accepted ones are "resent_copies";
  * every acknowledged transaction ID occurs in the chain ("lost" otherwise);
and across OSNs: the same height, and byte-identical header and data for every
block number ("divergent" blocks; the metadata holds each OSN's own signature,
so it differs legitimately).

Prints a summary (or JSON with --json) and exits 1 on any violation.
"""

import argparse
import hashlib
import json
import struct
import sys


class WireError(Exception):
    pass


def varint(buf, i):
    shift = 0
    value = 0
    while True:
        if i >= len(buf):
            raise WireError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise WireError("varint too long")


def fields(buf):
    """Yields (field number, wire type, value) of a protobuf message;
    value is an int (varint / fixed) or bytes (length-delimited)."""
    i = 0
    n = len(buf)
    while i < n:
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise WireError("field number 0")
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            if i + 8 > n:
                raise WireError("truncated fixed64")
            v = struct.unpack_from("<Q", buf, i)[0]
            i += 8
        elif wt == 2:
            ln, i = varint(buf, i)
            if i + ln > n:
                raise WireError("truncated length-delimited field")
            v = bytes(buf[i:i + ln])
            i += ln
        elif wt == 5:
            if i + 4 > n:
                raise WireError("truncated fixed32")
            v = struct.unpack_from("<I", buf, i)[0]
            i += 4
        else:
            raise WireError("unsupported wire type %d" % wt)
        yield num, wt, v


def first(buf, num, default):
    """The last occurrence of field `num` (protobuf: last one wins)."""
    out = default
    for n, _, v in fields(buf):
        if n == num:
            out = v
    return out


def repeated(buf, num):
    return [v for n, _, v in fields(buf) if n == num]


# ----------------------------------------------------------------- ASN.1 DER ----
def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der_tlv(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def der_uint(n):
    # Minimal two's complement of a non-negative integer (big.Int in Go).
    b = n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")
    if b[0] & 0x80:
        b = b"\x00" + b
    return der_tlv(0x02, b)


def header_hash(number, previous_hash, data_hash):
    der = der_tlv(0x30, der_uint(number) + der_tlv(0x04, previous_hash) + der_tlv(0x04, data_hash))
    return hashlib.sha256(der).digest()


# ---------------------------------------------------------------- Fabric data ----
HEADER_TYPES = {0: "MESSAGE", 1: "CONFIG", 2: "CONFIG_UPDATE", 3: "ENDORSER_TRANSACTION",
                4: "ORDERER_TRANSACTION", 5: "DELIVER_SEEK_INFO", 6: "CHAINCODE_PACKAGE"}


def envelope_txid(env):
    """(header type, tx id) of a marshaled common.Envelope."""
    payload = first(env, 1, b"")          # Envelope.payload
    header = first(payload, 1, b"")       # Payload.header
    ch = first(header, 1, b"")            # Header.channel_header
    htype = first(ch, 1, 0)               # ChannelHeader.type
    txid = first(ch, 5, b"")              # ChannelHeader.tx_id
    return htype, txid.decode("utf-8", "replace")


def read_blocks(path):
    with open(path, "rb") as f:
        data = f.read()
    i = 0
    out = []
    while i < len(data):
        if i + 4 > len(data):
            raise WireError("%s: truncated length prefix at byte %d" % (path, i))
        (ln,) = struct.unpack_from(">I", data, i)
        i += 4
        if i + ln > len(data):
            raise WireError("%s: truncated block at byte %d" % (path, i))
        out.append(data[i:i + ln])
        i += ln
    return out


def check_chain(name, raw_blocks, violations):
    """Verifies one OSN's chain; returns [(header bytes, data bytes)], {txid: count}, txs,
    {txid: set of SHA-256 of its envelopes}."""
    prev = None
    blocks = []
    txids = {}
    contents = {}
    txs = 0
    for idx, raw in enumerate(raw_blocks):
        try:
            hdr = first(raw, 1, b"")
            dat = first(raw, 2, b"")
            number = first(hdr, 1, 0)
            previous_hash = first(hdr, 2, b"")
            data_hash = first(hdr, 3, b"")
            envs = repeated(dat, 1)
        except WireError as e:
            violations.append("%s block #%d: undecodable: %s" % (name, idx, e))
            blocks.append((None, None))
            prev = None
            continue
        if number != idx:
            violations.append("%s: block #%d has number %d" % (name, idx, number))
        if hashlib.sha256(b"".join(envs)).digest() != data_hash:
            violations.append("%s block %d: data_hash does not match the envelopes" % (name, number))
        if idx == 0:
            if previous_hash:
                violations.append("%s block 0: non-empty previous_hash" % name)
        elif prev is not None and previous_hash != header_hash(*prev):
            violations.append("%s block %d: previous_hash is not the hash of block %d's header"
                              % (name, number, number - 1))
        prev = (number, previous_hash, data_hash)
        blocks.append((hdr, dat))
        for env in envs:
            try:
                _htype, txid = envelope_txid(env)
            except WireError as e:
                violations.append("%s block %d: undecodable envelope: %s" % (name, number, e))
                continue
            txs += 1
            if txid:
                txids[txid] = txids.get(txid, 0) + 1
                contents.setdefault(txid, set()).add(hashlib.sha256(env).digest())
    return blocks, txids, txs, contents


def read_id_lines(paths):
    """(number of lines, {id: count}) of one-ID-a-line logs."""
    counts = {}
    lines = 0
    for p in paths:
        with open(p, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    lines += 1
                    counts[line] = counts.get(line, 0) + 1
    return lines, counts


def duplicates(txids, contents, resent, mode):
    """(unaccounted extra copies, accepted re-sent copies, examples) of one chain."""
    bad = 0
    accepted = 0
    examples = []
    for t, c in txids.items():
        if c < 2:
            continue
        extra = c - 1
        if mode == "resent" and len(contents.get(t, ())) == 1:
            ok = min(extra, resent.get(t, 0))
        else:
            ok = 0  # other bytes under one tx ID are never a client's re-send
        accepted += ok
        if extra > ok:
            bad += extra - ok
            examples.append(t)
    return bad, accepted, examples[:3]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chain", action="append", default=[], metavar="NAME=FILE",
                    help="an OSN's raw block file (repeat for each OSN)")
    ap.add_argument("--acks", nargs="*", default=[], metavar="FILE", help="ack logs")
    ap.add_argument("--duplicates", choices=("none", "resent"), default="none",
                    help="none: no tx ID twice (exactly-once window on); resent: extra "
                         "byte-identical copies only for tx IDs in the resend logs")
    ap.add_argument("--resent", nargs="*", default=[], metavar="FILE",
                    help="resend logs (with --duplicates resent)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if not a.chain:
        ap.error("at least one --chain")
    violations = []
    ack_lines, ack_counts = read_id_lines(a.acks)
    acked = set(ack_counts)
    _, resent = read_id_lines(a.resent)
    chains = {}
    for spec in a.chain:
        name, _, path = spec.partition("=")
        try:
            raw = read_blocks(path)
        except (OSError, WireError) as e:
            violations.append("%s: %s" % (name, e))
            raw = []
        chains[name] = check_chain(name, raw, violations)

    lost = set()
    duplicated = 0
    resent_copies = 0
    per_osn = {}
    for name, (blocks, txids, txs, contents) in chains.items():
        dups, ok, ex = duplicates(txids, contents, resent, a.duplicates)
        missing = [t for t in acked if t not in txids]
        duplicated += dups
        resent_copies += ok
        lost.update(missing)
        per_osn[name] = {"height": len(blocks), "txs": txs, "duplicated": dups, "resent_copies": ok,
                         "lost": len(missing)}
        if dups:
            violations.append("%s: %d duplicated tx IDs, e.g. %s" % (name, dups, ex))
        if missing:
            violations.append("%s: %d acknowledged tx IDs missing, e.g. %s" % (name, len(missing), missing[:3]))

    heights = {n: len(c[0]) for n, c in chains.items()}
    if len(set(heights.values())) > 1:
        violations.append("heights differ: %s" % heights)
    divergent = 0
    names = list(chains)
    for n in range(min(heights.values()) if heights else 0):
        ref = chains[names[0]][0][n]
        if any(chains[o][0][n] != ref for o in names[1:]):
            divergent += 1
            if divergent <= 3:
                violations.append("block %d differs between OSNs" % n)
    if ack_lines != len(acked):
        violations.append("ack logs hold %d lines for %d distinct tx IDs" % (ack_lines, len(acked)))

    report = {
        "osns": len(chains),
        "height": max(heights.values()) if heights else 0,
        "acknowledged": len(acked),
        "lost": len(lost),
        "duplicated": duplicated,
        "resent_copies": resent_copies,
        "duplicates_mode": a.duplicates,
        "divergent": divergent,
        "per_osn": per_osn,
        "violations": violations,
    }
    if a.json:
        print(json.dumps(report))
    else:
        print("check: osns=%d height=%d acknowledged=%d lost=%d duplicated=%d resent_copies=%d "
              "divergent=%d violations=%d"
              % (report["osns"], report["height"], report["acknowledged"], report["lost"],
                 duplicated, resent_copies, divergent, len(violations)))
        for v in violations[:20]:
            print("violation: " + v)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
