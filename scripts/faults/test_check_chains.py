#!/usr/bin/env python3
"""Tests of check_chains.py: it accepts a good chain and reports each kind of
violation (lost, duplicated, broken data hash, broken link, divergent OSN,
gap, undecodable block). Run: python3 scripts/faults/test_check_chains.py"""

import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_chains as cc  # noqa: E402


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def fld(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    return varint(num << 3 | 2) + varint(len(value)) + value


def envelope(txid, htype=3):
    """`txid` may be "id~variant": the tx ID is "id", the content differs per variant."""
    tid, _, variant = txid.partition("~")
    ch = fld(1, htype) + fld(4, b"ch") + fld(5, tid.encode())
    header = fld(1, ch) + fld(2, b"sigheader")
    payload = fld(1, header) + fld(2, b"data-" + txid.encode())
    return fld(1, payload) + fld(2, b"sig")


def chain(blocks_txids, sig=b"osn"):
    out = []
    prev = b""
    for n, txids in enumerate(blocks_txids):
        envs = [envelope(t) for t in txids]
        dh = hashlib.sha256(b"".join(envs)).digest()
        hdr = (fld(1, n) if n else b"") + (fld(2, prev) if prev else b"") + fld(3, dh)
        data = b"".join(fld(1, e) for e in envs)
        meta = fld(1, sig)
        out.append(fld(1, hdr) + fld(2, data) + fld(3, meta))
        prev = cc.header_hash(n, prev, dh)
    return out


class CheckerTest(unittest.TestCase):
    def run_checker(self, chains, acks, resent=None):
        """`resent`: None (mode none) or the resend log lines (mode resent)."""
        with tempfile.TemporaryDirectory() as d:
            args = [sys.executable, os.path.join(HERE, "check_chains.py"), "--json"]
            if resent is not None:
                rp = os.path.join(d, "resent.log")
                with open(rp, "w") as f:
                    f.write("".join(t + "\n" for t in resent))
                args += ["--duplicates", "resent", "--resent", rp]
            for i, blocks in enumerate(chains):
                p = os.path.join(d, "c%d" % i)
                with open(p, "wb") as f:
                    for b in blocks:
                        f.write(struct.pack(">I", len(b)) + b)
                args += ["--chain", "osn%d=%s" % (i, p)]
            ap = os.path.join(d, "acks.log")
            with open(ap, "w") as f:
                f.write("".join(a + "\n" for a in acks))
            r = subprocess.run(args + ["--acks", ap], capture_output=True, text=True)
            rep = json.loads(r.stdout)
            self.assertEqual(r.returncode != 0, bool(rep["violations"]))
            return rep

    def test_golden_header_hash(self):
        # Fabric's protoutil TestNewBlock construction.
        dh = hashlib.sha256(bytes([0, 1, 2])).digest()
        self.assertEqual(cc.header_hash(0, b"datahash", dh).hex(),
                         "7d9bf4ccd0665d7ebec25ea15ad7872bb1b5392858fd7f21123b69e1a057d8ee")
        self.assertEqual(cc.der_uint(0), b"\x02\x01\x00")
        self.assertEqual(cc.der_uint(128), b"\x02\x02\x00\x80")
        self.assertEqual(cc.der_len(200), b"\x81\xc8")

    def test_good_chains_pass(self):
        blocks = [["g"], ["a", "b"], ["c"], []]
        rep = self.run_checker([chain(blocks, b"x"), chain(blocks, b"y")], ["a", "c"])
        self.assertEqual(rep["violations"], [])
        self.assertEqual((rep["height"], rep["acknowledged"], rep["lost"]), (4, 2, 0))

    def test_lost_and_duplicated(self):
        rep = self.run_checker([chain([["g"], ["a", "b"], ["a"]])], ["a", "z"])
        self.assertEqual(rep["lost"], 1)
        self.assertEqual(rep["duplicated"], 1)

    def test_divergent_and_height(self):
        rep = self.run_checker([chain([["g"], ["a"], ["b"]]), chain([["g"], ["b"]])], [])
        self.assertEqual(rep["divergent"], 1)
        self.assertTrue(any("heights differ" in v for v in rep["violations"]))

    def test_broken_data_hash_and_link(self):
        c = chain([["g"], ["a"], ["b"], ["c"]])
        c[2] = c[2].replace(b"data-b", b"data-X")
        rep = self.run_checker([c], [])
        self.assertTrue(any("block 2: data_hash" in v for v in rep["violations"]), rep)
        c = chain([["g"], ["a"], ["b"], ["c"]])
        c2 = chain([["g"], ["a"], ["B"], ["c"]])
        c[2] = c2[2]  # valid block, but block 3's previous_hash no longer matches
        rep = self.run_checker([c], [])
        self.assertTrue(any("block 3: previous_hash" in v for v in rep["violations"]), rep)

    def test_gap_and_garbage(self):
        c = chain([["g"], ["a"], ["b"]])
        rep = self.run_checker([[c[0], c[2]]], [])
        self.assertTrue(any("has number 2" in v for v in rep["violations"]), rep)
        rep = self.run_checker([[c[0], b"\x0a\xff"]], [])
        self.assertTrue(any("undecodable" in v for v in rep["violations"]), rep)

    def test_resent_mode_accepts_copies_only_of_resent_ids(self):
        blocks = [["g"], ["a", "b"], ["a", "c"], ["a"]]
        # Mode none (exactly-once window on): every extra copy is a violation.
        rep = self.run_checker([chain(blocks)], ["a", "b", "c"])
        self.assertEqual(rep["duplicated"], 2)
        # "a" re-sent twice: both extra copies accepted.
        rep = self.run_checker([chain(blocks), chain(blocks, b"y")], ["a", "b", "c"], ["a", "a"])
        self.assertEqual(rep["violations"], [])
        self.assertEqual((rep["duplicated"], rep["resent_copies"]), (0, 4))
        # Re-sent once, in the chain three times: one copy unaccounted for.
        rep = self.run_checker([chain(blocks)], ["a"], ["a", "b"])
        self.assertEqual((rep["duplicated"], rep["resent_copies"]), (1, 1))
        self.assertTrue(any("duplicated" in v for v in rep["violations"]), rep)
        # Not re-sent at all: a duplicate the client never caused.
        rep = self.run_checker([chain([["g"], ["b"], ["b"]])], ["b"], ["a"])
        self.assertEqual((rep["duplicated"], rep["resent_copies"]), (1, 0))

    def test_resent_mode_refuses_other_content_under_a_resent_id(self):
        # The same tx ID with other bytes is not a re-send (an attacker's copy).
        rep = self.run_checker([chain([["g"], ["a~1"], ["a~2"]])], ["a"], ["a"])
        self.assertEqual((rep["duplicated"], rep["resent_copies"]), (1, 0))
        rep = self.run_checker([chain([["g"], ["a~1"], ["a~1"]])], ["a"], ["a"])
        self.assertEqual((rep["duplicated"], rep["resent_copies"]), (0, 1))
        self.assertEqual(rep["violations"], [])

    def test_resent_mode_still_finds_lost_and_divergent(self):
        rep = self.run_checker([chain([["g"], ["a"], ["a"]]), chain([["g"], ["a", "a"]])],
                               ["a", "z"], ["a"])
        self.assertEqual(rep["lost"], 1)
        self.assertEqual(rep["divergent"], 1)


if __name__ == "__main__":
    unittest.main()
