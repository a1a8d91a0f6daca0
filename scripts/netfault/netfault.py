#!/usr/bin/env python3
"""Network partitions between test nodes, each in its own network namespace.

Every node (ZooKeeper, broker, OSN, test client) of a test runs in a network
namespace of its own, `<prefix>-<name>`, with one address on a private subnet
(10.213.0.0/24 by default). The namespaces are linked through a bridge that
lives in a hub namespace, `<prefix>-hub`; links are cut with nftables rules
in that hub namespace only (bridge family, forward hook). The host's own
network namespace, its interfaces, routes and firewall are never touched: the
only host-side state is the namespace names under /run/netns and this tool's
registry, /run/netfault/<prefix>.json, which lists what it created (and what
`down` removes: nothing else).

    netfault.py [--prefix P] up NAME=ADDR ...   create the hub and these nodes (idempotent)
    netfault.py [--prefix P] exec NAME CMD ...  run CMD inside NAME's namespace
    netfault.py [--prefix P] addr NAME          print NAME's address
    netfault.py [--prefix P] isolate NAME ...   cut every link of these nodes
    netfault.py [--prefix P] split A,B C,D      cut every link between the two sides
    netfault.py [--prefix P] cut FROM TO        drop packets from FROM to TO only
    netfault.py [--prefix P] flap A B --on S --off S --for S   cut and heal A<->B in turns
    netfault.py [--prefix P] heal               remove every cut
    netfault.py [--prefix P] rules              print the cuts in force
    netfault.py [--prefix P] down [--kill]      delete the nodes and the hub (--kill: kill
                                                the processes left inside them first)

As a module: `Net(prefix)` offers the same operations to the fault harness.
Needs root, iproute2 and nftables (Debian: iproute2, nftables).
"""

import argparse
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time

REGISTRY_DIR = "/run/netfault"
NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
TABLE = "netfault"
CHAIN = "cuts"
DEFAULT_SUBNET = "10.213.0.0/24"


class NetfaultError(Exception):
    pass


def run(args, check=True, input_text=None):
    p = subprocess.run(args, input=input_text, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise NetfaultError("%s: %s" % (" ".join(args), (p.stderr or p.stdout).strip()))
    return p


class Net:
    """The namespaces of one prefix and the cuts between them."""

    def __init__(self, prefix="rsf", subnet=DEFAULT_SUBNET):
        if not NAME_RE.match(prefix):
            raise NetfaultError("prefix %r: lowercase letters and digits, at most 12" % prefix)
        self.prefix = prefix
        self.subnet = ipaddress.ip_network(subnet)
        self.registry_path = os.path.join(REGISTRY_DIR, prefix + ".json")

    # ------------------------------------------------------------------ registry
    def _load(self):
        try:
            with open(self.registry_path) as f:
                return json.load(f)
        except FileNotFoundError:
            return {"subnet": str(self.subnet), "nodes": {}}

    def _save(self, reg):
        os.makedirs(REGISTRY_DIR, exist_ok=True)
        tmp = self.registry_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(reg, f, indent=1, sort_keys=True)
        os.replace(tmp, self.registry_path)

    def nodes(self):
        return dict(self._load()["nodes"])

    def ns(self, name):
        return "%s-%s" % (self.prefix, name)

    @property
    def hub(self):
        return self.ns("hub")

    def addr(self, name):
        nodes = self.nodes()
        if name not in nodes:
            raise NetfaultError("no node %r in %s (known: %s)" % (name, self.prefix, ", ".join(sorted(nodes)) or "none"))
        return nodes[name]

    # ------------------------------------------------------------------ set-up
    def _ns_exists(self, ns):
        return os.path.exists(os.path.join("/run/netns", ns))

    def _ensure_hub(self, reg):
        if reg.get("hub"):
            return
        if self._ns_exists(self.hub):
            raise NetfaultError("namespace %s exists but is not in %s: refusing to adopt it" % (self.hub, self.registry_path))
        run(["ip", "netns", "add", self.hub])
        reg["hub"] = True
        self._save(reg)
        run(["ip", "-n", self.hub, "link", "set", "lo", "up"])
        run(["ip", "-n", self.hub, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", self.hub, "link", "set", "br0", "up"])
        rules = "table bridge %s {\n chain %s { type filter hook forward priority 0; policy accept; }\n}\n" % (TABLE, CHAIN)
        run(["ip", "netns", "exec", self.hub, "nft", "-f", "-"], input_text=rules)

    def up(self, wanted):
        """Create the hub and the nodes {name: address} that do not exist yet."""
        reg = self._load()
        for name, address in wanted.items():
            if not NAME_RE.match(name) or name == "hub":
                raise NetfaultError("node name %r: lowercase letters and digits, at most 12, not 'hub'" % name)
            if ipaddress.ip_address(address) not in self.subnet:
                raise NetfaultError("%s: address %s is not in %s" % (name, address, self.subnet))
            known = reg["nodes"].get(name)
            if known and known != address:
                raise NetfaultError("%s already has address %s" % (name, known))
            taken = [n for n, a in reg["nodes"].items() if a == address and n != name]
            if taken:
                raise NetfaultError("address %s is already %s's" % (address, taken[0]))
        self._ensure_hub(reg)
        for name, address in wanted.items():
            if name in reg["nodes"]:
                continue
            self._add_node(reg, name, address)

    def _add_node(self, reg, name, address):
        ns = self.ns(name)
        if self._ns_exists(ns):
            raise NetfaultError("namespace %s exists but is not in %s: refusing to adopt it" % (ns, self.registry_path))
        run(["ip", "netns", "add", ns])
        reg["nodes"][name] = address
        self._save(reg)
        veth = "v-" + name
        run(["ip", "-n", self.hub, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "-n", self.hub, "link", "set", veth, "master", "br0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", ns, "addr", "add", "%s/%d" % (address, self.subnet.prefixlen), "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])

    def exec_argv(self, name, argv):
        """The argv that runs argv inside name's namespace."""
        self.addr(name)
        return ["ip", "netns", "exec", self.ns(name)] + list(argv)

    # ------------------------------------------------------------------ cuts
    def _nft(self, *cmd):
        return run(["ip", "netns", "exec", self.hub, "nft"] + list(cmd))

    def cut(self, src, dst):
        """Drop every packet from src to dst (one direction)."""
        a, b = self.addr(src), self.addr(dst)
        self._nft("add", "rule", "bridge", TABLE, CHAIN, "ip", "saddr", a, "ip", "daddr", b, "drop",
                  "comment", '"%s>%s"' % (src, dst))

    def cut_both(self, a, b):
        self.cut(a, b)
        self.cut(b, a)

    def isolate(self, *names):
        for name in names:
            for other in self.nodes():
                if other != name and other not in names[: names.index(name)]:
                    self.cut_both(name, other)

    def split(self, side_a, side_b):
        overlap = set(side_a) & set(side_b)
        if overlap:
            raise NetfaultError("nodes on both sides: %s" % ", ".join(sorted(overlap)))
        for a in side_a:
            for b in side_b:
                self.cut_both(a, b)

    def heal(self):
        self._nft("flush", "chain", "bridge", TABLE, CHAIN)

    def rules(self):
        out = self._nft("list", "chain", "bridge", TABLE, CHAIN).stdout
        return re.findall(r'comment "([^"]+)"', out)

    def flap(self, a, b, on_s, off_s, total_s, sleep=time.sleep):
        """Cut and heal the link a<->b in turns for total_s seconds; ends healed."""
        end = time.monotonic() + total_s
        try:
            while time.monotonic() < end:
                self.cut_both(a, b)
                sleep(min(off_s, max(0.0, end - time.monotonic())))
                self._uncut(a, b)
                sleep(min(on_s, max(0.0, end - time.monotonic())))
        finally:
            self._uncut(a, b)

    def _uncut(self, a, b):
        out = self._nft("-a", "list", "chain", "bridge", TABLE, CHAIN).stdout
        for line in out.splitlines():
            m = re.search(r'comment "([^"]+)" # handle (\d+)', line)
            if m and m.group(1) in ("%s>%s" % (a, b), "%s>%s" % (b, a)):
                self._nft("delete", "rule", "bridge", TABLE, CHAIN, "handle", m.group(2))

    # ------------------------------------------------------------------ tear-down
    def pids_inside(self, name):
        p = run(["ip", "netns", "pids", self.ns(name)], check=False)
        return [int(x) for x in p.stdout.split() if x.isdigit()]

    def remove(self, *names):
        """Delete these nodes' namespaces (the hub and the other nodes stay)."""
        reg = self._load()
        for name in names:
            if name in reg["nodes"]:
                run(["ip", "netns", "del", self.ns(name)], check=False)
                run(["ip", "-n", self.hub, "link", "del", "v-" + name], check=False)
                del reg["nodes"][name]
                self._save(reg)

    def down(self, kill=False):
        """Delete every namespace this registry lists; refuses while processes run inside
        unless kill is set."""
        reg = self._load()
        busy = {n: self.pids_inside(n) for n in reg["nodes"]}
        busy = {n: p for n, p in busy.items() if p}
        if busy and not kill:
            raise NetfaultError("processes still run inside: %s (stop them or use --kill)" %
                                ", ".join("%s %s" % (n, p) for n, p in sorted(busy.items())))
        for pids in busy.values():
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for name in list(reg["nodes"]):
            run(["ip", "netns", "del", self.ns(name)], check=False)
            del reg["nodes"][name]
            self._save(reg)
        if reg.get("hub"):
            run(["ip", "netns", "del", self.hub], check=False)
        try:
            os.remove(self.registry_path)
        except FileNotFoundError:
            pass


def parse_assignments(items):
    out = {}
    for item in items:
        if "=" not in item:
            raise NetfaultError("expected NAME=ADDR, got %r" % item)
        name, address = item.split("=", 1)
        out[name] = address
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prefix", default=os.environ.get("NETFAULT_PREFIX", "rsf"))
    ap.add_argument("--subnet", default=DEFAULT_SUBNET)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up").add_argument("nodes", nargs="+", metavar="NAME=ADDR")
    p = sub.add_parser("exec")
    p.add_argument("name")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    sub.add_parser("addr").add_argument("name")
    sub.add_parser("isolate").add_argument("names", nargs="+")
    p = sub.add_parser("split")
    p.add_argument("side_a")
    p.add_argument("side_b")
    p = sub.add_parser("cut")
    p.add_argument("src")
    p.add_argument("dst")
    p = sub.add_parser("flap")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--on", type=float, default=2.0, help="seconds linked per turn")
    p.add_argument("--off", type=float, default=2.0, help="seconds cut per turn")
    p.add_argument("--for", dest="total", type=float, default=20.0, help="seconds in all")
    sub.add_parser("heal")
    sub.add_parser("rules")
    sub.add_parser("nodes")
    sub.add_parser("down").add_argument("--kill", action="store_true")
    a = ap.parse_args(argv)
    net = Net(a.prefix, a.subnet)
    try:
        if a.cmd == "up":
            net.up(parse_assignments(a.nodes))
        elif a.cmd == "exec":
            argv = a.argv[1:] if a.argv[:1] == ["--"] else a.argv
            if not argv:
                raise NetfaultError("exec needs a command")
            os.execvp("ip", net.exec_argv(a.name, argv))
        elif a.cmd == "addr":
            print(net.addr(a.name))
        elif a.cmd == "isolate":
            net.isolate(*a.names)
        elif a.cmd == "split":
            net.split(a.side_a.split(","), a.side_b.split(","))
        elif a.cmd == "cut":
            net.cut(a.src, a.dst)
        elif a.cmd == "flap":
            net.flap(a.a, a.b, a.on, a.off, a.total)
        elif a.cmd == "heal":
            net.heal()
        elif a.cmd == "rules":
            for r in net.rules():
                print(r)
        elif a.cmd == "nodes":
            for name, address in sorted(net.nodes().items()):
                print("%-12s %s" % (name, address))
        elif a.cmd == "down":
            net.down(kill=a.kill)
    except NetfaultError as e:
        print("netfault: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
