#!/usr/bin/env python3
"""Tests of netfault.py on real namespaces (needs root, iproute2, nftables).

    python3 scripts/netfault/test_netfault.py

Three nodes each run a TCP listener; every check connects from one node to another and
expects the connection to succeed or to time out as the cuts in force say.
"""

import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netfault  # noqa: E402

PORT = 47001
NODES = {"a": "10.213.9.10", "b": "10.213.9.11", "c": "10.213.9.12"}
LISTENER = "import socket,time\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n" \
           "s.bind(('%s',%d));s.listen(64)\nwhile True:\n  c,_=s.accept();c.close()\n"
CONNECT = "import socket,sys\nc=socket.socket();c.settimeout(1.0)\ntry:\n  c.connect(('%s',%d));print('open')\n" \
          "except OSError:\n  print('cut')\n"


class NetfaultTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0 and os.environ.get("CI"):
            raise RuntimeError("netfault tests need root")
        cls.net = netfault.Net("nftest", "10.213.9.0/24")
        cls.net.down(kill=True)
        cls.net.up(NODES)
        cls.listeners = [
            subprocess.Popen(cls.net.exec_argv(n, ["python3", "-c", LISTENER % (a, PORT)]))
            for n, a in NODES.items()
        ]
        time.sleep(0.5)

    @classmethod
    def tearDownClass(cls):
        for p in cls.listeners:
            p.kill()
            p.wait()
        cls.net.down(kill=True)
        assert not os.path.exists("/run/netns/nftest-hub")

    def tearDown(self):
        self.net.heal()

    def reach(self, src, dst):
        out = subprocess.run(self.net.exec_argv(src, ["python3", "-c", CONNECT % (NODES[dst], PORT)]),
                             capture_output=True, text=True, check=True).stdout.strip()
        return out == "open"

    def matrix(self):
        return {(s, d) for s in NODES for d in NODES if s != d and self.reach(s, d)}

    def all_pairs_but(self, *cut):
        return {(s, d) for s in NODES for d in NODES if s != d} - set(cut)

    def test_healed_network_connects_every_pair(self):
        self.assertEqual(self.matrix(), self.all_pairs_but())

    def test_isolate_cuts_every_link_of_the_node_only(self):
        self.net.isolate("a")
        self.assertEqual(self.matrix(), {("b", "c"), ("c", "b")})
        self.assertEqual(sorted(self.net.rules()), ["a>b", "a>c", "b>a", "c>a"])

    def test_split_cuts_between_sides(self):
        self.net.split(["a"], ["b", "c"])
        self.assertEqual(self.matrix(), {("b", "c"), ("c", "b")})
        self.net.heal()
        self.net.split(["a", "b"], ["c"])
        self.assertEqual(self.matrix(), {("a", "b"), ("b", "a")})

    def test_one_direction_cut_blocks_only_that_direction_of_packets(self):
        self.net.cut("a", "b")
        # a's SYN never reaches b; b's SYN reaches a but a's SYN-ACK is dropped: TCP needs both
        # directions, so both connects fail, while a<->c and b<->c are untouched.
        self.assertEqual(self.matrix(), self.all_pairs_but(("a", "b"), ("b", "a")))
        self.assertEqual(self.net.rules(), ["a>b"])

    def test_flap_ends_healed(self):
        seen = []
        self.net.flap("a", "b", on_s=0.05, off_s=0.05, total_s=0.3,
                      sleep=lambda s: (seen.append(self.net.rules()), time.sleep(s)))
        self.assertIn(["a>b", "b>a"], seen)
        self.assertIn([], seen)
        self.assertEqual(self.net.rules(), [])
        self.assertEqual(self.matrix(), self.all_pairs_but())

    def test_heal_restores_everything(self):
        self.net.isolate("a", "b")
        self.net.heal()
        self.assertEqual(self.matrix(), self.all_pairs_but())

    def test_refuses_foreign_namespace_and_bad_input(self):
        subprocess.run(["ip", "netns", "add", "nftest-zz"], check=True)
        try:
            with self.assertRaisesRegex(netfault.NetfaultError, "refusing to adopt"):
                self.net.up({"zz": "10.213.9.99"})
        finally:
            subprocess.run(["ip", "netns", "del", "nftest-zz"], check=True)
        with self.assertRaisesRegex(netfault.NetfaultError, "not in"):
            self.net.up({"d": "10.1.2.3"})
        with self.assertRaisesRegex(netfault.NetfaultError, "already"):
            self.net.up({"d": NODES["a"]})
        with self.assertRaisesRegex(netfault.NetfaultError, "no node"):
            self.net.cut("a", "nosuch")

    def test_down_refuses_while_processes_run_inside(self):
        with self.assertRaisesRegex(netfault.NetfaultError, "processes still run inside"):
            self.net.down()


if __name__ == "__main__":
    unittest.main(verbosity=2)
