#!/usr/bin/env python3
"""Fault injection under load on the real Kafka cluster (see scripts/faults.sh).

Sets up a Kafka channel (our configtxgen), starts OSNS real `orderer` processes
on it and, for each round, runs the fault-tolerant load generator
(`orderer-client broadcast --ack-log`, one per OSN, re-sending to the next OSN
after a failure) while injecting one randomly chosen fault:

  broker-kill   kill -9 a random broker, restart it after a few seconds
  broker-pause  SIGSTOP a random broker longer than the client and session
                timeouts, then SIGCONT
  zk-kill       kill -9 a random ZooKeeper node, restart it
  osn-kill      kill -9 a random OSN while blocks are being cut, restart it
  kafka-down    kill -9 every broker and ZooKeeper node for longer than
                Kafka.Retry.ShortTotal, then start them again
  osn-past-retention
                kill -9 a random OSN, let the load go on without it, then
                prune the channel's partition (Kafka DeleteRecords, what
                retention does) up to the lowest position of the running
                OSNs, past the stopped OSN's, and restart it: it cannot
                replay the partition and must catch up from another OSN
                (issue #15; not in the default --kinds)

After each round: every node is back, the OSNs' heights agree, the new blocks
are fetched from every OSN with Deliver (`orderer-client deliver --raw-out`),
and the independent checker (check_chains.py) verifies all chains against all
ack logs so far. A round also fails if an OSN that was not killed died.
Prints per-round lines and the totals; exits 1 on any violation.

The channel has the orderer's exactly-once window on (the RS_EXACTLY_ONCE
orderer capability in its genesis block), and the checker demands that no tx
ID is in the chain twice. With --no-exactly-once the channel is as Fabric's
(every copy a client sends is ordered): the load generators also keep resend
logs, and the checker accepts an extra copy only of an envelope its client
re-sent, byte-identical to the first (check_chains.py --duplicates resent).
"""

import argparse
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KAFKA_SH = os.path.join(ROOT, "scripts", "kafka", "kafka.sh")
CHECKER = os.path.join(HERE, "check_chains.py")
KINDS = ["broker-kill", "broker-pause", "zk-kill", "osn-kill", "kafka-down", "osn-past-retention"]
DEFAULT_KINDS = KINDS[:5]
# Need --netns: every node in its own network namespace (scripts/netfault), links cut by nftables.
NET_KINDS = ["leader-isolated", "osn-leader-cut", "osn-brokers-cut", "brokers-split", "link-flap", "clock-step"]
sys.path.insert(0, os.path.join(ROOT, "scripts", "netfault"))
import netfault  # noqa: E402


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def kafka(*args, check=True, timeout=300):
    r = subprocess.run([KAFKA_SH, *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("kafka.sh %s failed: %s%s" % (" ".join(args), r.stdout, r.stderr[-2000:]))
    return r


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Net:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.bin = args.bin_dir
        self.osns = []  # dicts: host, port, ops, ledger, log, proc
        self.channel = "faults-%d" % int(time.time())
        # --netns: OSN i in namespace <prefix>-osn<i> on <net>.(31+i); clients in <prefix>-ctl
        self.ns = netfault.Net(args.netns, args.netns_net + ".0/24") if args.netns else None

    def osn_address(self, o):
        return "%s:%d" % (o["host"], o["port"])

    def in_ns(self, name, argv):
        return self.ns.exec_argv(name, argv) if self.ns else argv

    def client_base(self, o):
        return self.in_ns("ctl", [os.path.join(self.bin, "orderer-client"), "--server", self.osn_address(o),
                                  "--channel", self.channel, "--mspdir", self.user_msp, "--mspid", "SampleOrg"])

    def setup(self, brokers):
        dev = os.path.join(self.work, "dev")
        port = free_port()
        env = dict(os.environ, FABRIC_ORDERER_DEV_DIR=dev, ORDERER_GENERAL_LISTENPORT=str(port),
                   ORDERER_OPERATIONS_LISTENADDRESS="127.0.0.1:%d" % free_port(),
                   FABRIC_LOGGING_SPEC="warning")
        cfg = os.path.join(self.work, "no-config")
        os.makedirs(cfg, exist_ok=True)
        env["FABRIC_CFG_PATH"] = cfg
        with open(os.path.join(self.work, "devnet.log"), "w") as lf:
            p = subprocess.Popen([os.path.join(self.bin, "orderer"), "start"], env=env, cwd=cfg,
                                 stdout=lf, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while not (port_open(port) and os.path.exists(os.path.join(dev, "devnet.json"))):
            if time.time() > deadline or p.poll() is not None:
                raise RuntimeError("development network did not start (see %s/devnet.log)" % self.work)
            time.sleep(0.2)
        p.terminate()
        p.wait(timeout=30)
        org = os.path.join(dev, "crypto", "ordererOrganizations", "example.com")
        self.orderer_msp = os.path.join(org, "orderers", "orderer.example.com", "msp")
        with open(os.path.join(dev, "devnet.json")) as f:
            dn = json.load(f)
        um = dn["client_msp_dir"]
        self.user_msp = um if os.path.isabs(um) else os.path.join(dev, um)
        for i in range(self.args.osns):
            if self.ns:
                host, port, ops = "%s.%d" % (self.args.netns_net, 31 + i), 7050, 9443
                self.ns.up({"osn%d" % i: host})
            else:
                host, port, ops = "127.0.0.1", free_port(), free_port()
            self.osns.append({"i": i, "host": host, "port": port, "ops": ops,
                              "ledger": os.path.join(self.work, "osn%d" % i, "ledger"),
                              "log": os.path.join(self.work, "osn%d.log" % i), "proc": None,
                              "chain": os.path.join(self.work, "osn%d.chain" % i), "have": 0,
                              "clock": os.path.join(self.work, "osn%d.clock" % i)})
        blist = "\n".join("                    - %s" % b for b in brokers)
        addrs = ", ".join(self.osn_address(o) for o in self.osns)
        orderer_caps = "V1_4_2: true" + (", RS_EXACTLY_ONCE: true" if self.args.exactly_once else "")
        yaml = f"""Organizations:
    - &SampleOrg
        Name: SampleOrg
        ID: SampleOrg
        MSPDir: {org}/msp
        Policies:
            Readers: {{ Type: Signature, Rule: "OR('SampleOrg.member')" }}
            Writers: {{ Type: Signature, Rule: "OR('SampleOrg.member')" }}
            Admins: {{ Type: Signature, Rule: "OR('SampleOrg.admin')" }}
Profiles:
    Faults:
        Policies:
            Readers: {{ Type: ImplicitMeta, Rule: "ANY Readers" }}
            Writers: {{ Type: ImplicitMeta, Rule: "ANY Writers" }}
            Admins: {{ Type: ImplicitMeta, Rule: "MAJORITY Admins" }}
        Capabilities: {{ V1_4_3: true }}
        Orderer:
            OrdererType: kafka
            Addresses: [{addrs}]
            BatchTimeout: {self.args.batch_timeout}
            BatchSize: {{ MaxMessageCount: {self.args.max_message_count}, AbsoluteMaxBytes: 10 MB, PreferredMaxBytes: 2 MB }}
            Kafka:
                Brokers:
{blist}
            Organizations: [*SampleOrg]
            Policies:
                Readers: {{ Type: ImplicitMeta, Rule: "ANY Readers" }}
                Writers: {{ Type: ImplicitMeta, Rule: "ANY Writers" }}
                Admins: {{ Type: ImplicitMeta, Rule: "MAJORITY Admins" }}
                BlockValidation: {{ Type: ImplicitMeta, Rule: "ANY Writers" }}
            Capabilities: {{ {orderer_caps} }}
        Consortiums:
            SampleConsortium:
                Organizations: [*SampleOrg]
"""
        with open(os.path.join(self.work, "configtx.yaml"), "w") as f:
            f.write(yaml)
        self.genesis = os.path.join(self.work, "genesis.block")
        subprocess.run([os.path.join(self.bin, "configtxgen"), "-configPath", self.work, "-profile", "Faults",
                        "-channelID", self.channel, "-outputBlock", self.genesis],
                       check=True, capture_output=True)
        self.skewclock = self.build_skewclock() if "clock-step" in self.args.kind_list else None
        for i in range(len(self.osns)):
            self.start_osn(i)
        for o in self.osns:
            self.wait_serving(o, 120)

    def start_osn(self, i, extra_env=None):
        o = self.osns[i]
        os.makedirs(o["ledger"], exist_ok=True)
        env = dict(os.environ)
        env.update(
                   FABRIC_CFG_PATH=os.path.join(self.work, "no-config"),
                   ORDERER_GENERAL_BOOTSTRAPFILE=self.genesis,
                   ORDERER_GENERAL_LISTENADDRESS=o["host"],
                   ORDERER_GENERAL_LISTENPORT=str(o["port"]),
                   ORDERER_GENERAL_LOCALMSPDIR=self.orderer_msp,
                   ORDERER_GENERAL_LOCALMSPID="SampleOrg",
                   ORDERER_FILELEDGER_LOCATION=o["ledger"],
                   ORDERER_OPERATIONS_LISTENADDRESS="%s:%d" % (o["host"], o["ops"]),
                   ORDERER_METRICS_PROVIDER="prometheus",
                   ORDERER_KAFKA_TOPIC_REPLICATIONFACTOR="3",
                   ORDERER_KAFKA_RETRY_SHORTINTERVAL="1s",
                   ORDERER_KAFKA_RETRY_SHORTTOTAL=self.args.short_total,
                   ORDERER_KAFKA_RETRY_LONGINTERVAL="2s",
                   ORDERER_KAFKA_RETRY_LONGTOTAL="10m",
                   FABRIC_LOGGING_SPEC=self.args.log_spec)
        env.update(extra_env or {})
        if self.skewclock:  # the wall clock of this OSN follows o["clock"] (seconds of offset)
            env.update(LD_PRELOAD=self.skewclock, SKEWCLOCK_FILE=o["clock"])
        lf = open(o["log"], "a")
        lf.write("===== %s start\n" % time.strftime("%F %T"))
        lf.flush()
        o["proc"] = subprocess.Popen(self.in_ns("osn%d" % i, [os.path.join(self.bin, "orderer"), "start"]), env=env,
                                     cwd=os.path.join(self.work, "no-config"), stdout=lf, stderr=subprocess.STDOUT)
        lf.close()

    def height(self, o):
        r = subprocess.run(self.client_base(o) + ["channel-info"], capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout)["height"]
        except (ValueError, KeyError):
            return None

    def next_offset(self, o):
        """The offset the OSN's chain consumes next (last_offset_persisted + 1 of
        its last block, from its /metrics), None if it does not answer."""
        url = "http://%s:%d/metrics" % (o["host"], o["ops"])
        get = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
        r = subprocess.run(self.in_ns("ctl", [sys.executable, "-c", get, url]), capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            return None
        text = r.stdout
        want = 'consensus_kafka_last_offset_persisted{channel="%s"}' % self.channel
        for line in text.splitlines():
            if line.startswith(want):
                return int(float(line.split()[-1])) + 1
        return None

    def prune(self, brokers, offset):
        """Deletes the channel partition's records below `offset` (DeleteRecords)."""
        spec = os.path.join(self.work, "prune.json")
        with open(spec, "w") as f:
            json.dump({"partitions": [{"topic": self.channel, "partition": 0, "offset": offset}],
                       "version": 1}, f)
        kafka("run-class", "org.apache.kafka.tools.DeleteRecordsCommand", "--bootstrap-server",
              ",".join(brokers), "--offset-json-file", spec, timeout=120)

    def wait_serving(self, o, within):
        deadline = time.time() + within
        while time.time() < deadline:
            if o["proc"].poll() is not None:
                raise RuntimeError("OSN %d exited (%s); see %s" % (o["i"], o["proc"].returncode, o["log"]))
            if self.height(o) is not None:
                return
            time.sleep(0.5)
        raise RuntimeError("OSN %d not serving within %ds" % (o["i"], within))

    def build_skewclock(self):
        out = os.path.join(self.work, "skewclock.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", out, os.path.join(HERE, "skewclock.c"), "-ldl"],
                       check=True, capture_output=True)
        for o in self.osns:
            set_clock(o, 0)
        return out

    def heights(self):
        return [self.height(o) for o in self.osns]

    def rss_mib(self, o):
        """The OSN process's resident set size in MiB (/proc), None if gone."""
        try:
            with open("/proc/%d/status" % o["proc"].pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024.0
        except (OSError, ValueError, AttributeError):
            return None
        return None

    def kill_osn(self, i):
        self.osns[i]["rss"] = []  # a new process: its RSS series starts again
        p = self.osns[i]["proc"]
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)

    def stop_all(self):
        for o in self.osns:
            p = o["proc"]
            if p and p.poll() is None:
                p.terminate()
        for o in self.osns:
            p = o["proc"]
            if p:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def fetch(self, o):
        """Appends the blocks from o['have'] to the newest to o['chain']."""
        h = self.height(o)
        if h is None:
            return False
        if h <= o["have"]:
            return True
        part = o["chain"] + ".part"
        r = subprocess.run(self.client_base(o) + ["deliver", "--start", str(o["have"]), "--stop",
                                                          str(h - 1), "--raw-out", part],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            log("deliver from OSN %d failed: %s %s" % (o["i"], r.stdout[-500:], r.stderr[-500:]))
            return False
        n = count_blocks(part)
        if n != h - o["have"]:
            log("deliver from OSN %d: %d blocks, expected %d" % (o["i"], n, h - o["have"]))
            return False
        with open(o["chain"], "ab") as dst, open(part, "rb") as src:
            shutil.copyfileobj(src, dst)
        o["have"] = h
        return True


def set_clock(o, offset_s):
    tmp = o["clock"] + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % offset_s)
    os.replace(tmp, o["clock"])


def count_blocks(path):
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(4)
            if len(b) < 4:
                return n
            f.seek(int.from_bytes(b, "big"), 1)
            n += 1


class AckWatch:
    """Samples the round's ack logs every 0.25 s in a thread: the longest time in which one
    client (one load generator, which re-sends to the other OSNs after a failure) got no
    acknowledgement is how long the worst-off client was stalled."""

    def __init__(self, paths):
        self.paths = paths
        self.stop = threading.Event()
        self.longest = 0.0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    @staticmethod
    def size(path):
        try:
            return os.path.getsize(path)
        except OSError:
            return 0

    def run(self):
        last = {p: (0, time.time()) for p in self.paths}
        while not self.stop.wait(0.25):
            t = time.time()
            for p in self.paths:
                n = self.size(p)
                if n != last[p][0]:
                    last[p] = (n, t)
                elif n > 0:  # stalls count once the client had its first acknowledgement
                    self.longest = max(self.longest, t - last[p][1])

    def finish(self):
        self.stop.set()
        self.thread.join()
        return self.longest


def partition_leader(net, rng):
    """The broker that leads the channel's partition (a random one if Kafka cannot say)."""
    r = kafka("run-class", "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", ",".join(net.brokers),
              "--describe", "--topic", net.channel, check=False, timeout=60)
    m = re.search(r"Leader: (\d+)", r.stdout)
    return int(m.group(1)) if m and 1 <= int(m.group(1)) <= 4 else rng.randint(1, 4)


def hold(seconds, heal):
    try:
        time.sleep(seconds)
    finally:
        heal()


def inject_net(kind, net, rng, args):
    """The network and clock kinds (--netns); each ends healed. Returns (description, None)."""
    ns = net.ns
    brokers = ["broker%d" % b for b in range(1, 5)]
    zks = ["zk%d" % z for z in range(1, 4)]
    i = rng.randrange(len(net.osns))
    osn = "osn%d" % i
    if kind == "leader-isolated":
        lead = "broker%d" % partition_leader(net, rng)
        down = rng.uniform(10, 25)
        ns.split([lead], [n for n in zks + brokers if n != lead])
        hold(down, ns.heal)
        return "partition leader %s cut from ZooKeeper and the other brokers (OSNs still reach it) for %.1fs" % (
            lead, down), None
    if kind == "osn-leader-cut":
        lead = "broker%d" % partition_leader(net, rng)
        down = rng.uniform(5, 20)
        ns.split([osn], [lead])
        hold(down, ns.heal)
        return "OSN %d cut from the partition leader %s only for %.1fs" % (i, lead, down), None
    if kind == "osn-brokers-cut":
        down = args.short_total_s + rng.uniform(3, 10)
        ns.split([osn], brokers)
        hold(down, ns.heal)
        return "OSN %d cut from every broker for %.1fs (> ShortTotal %s)" % (i, down, args.short_total), None
    if kind == "brokers-split":
        order = brokers[:]
        rng.shuffle(order)
        down = rng.uniform(10, 25)
        ns.split(order[:2], order[2:])
        hold(down, ns.heal)
        return "brokers split %s | %s for %.1fs" % (",".join(sorted(order[:2])), ",".join(sorted(order[2:])),
                                                       down), None
    if kind == "link-flap":
        lead = "broker%d" % partition_leader(net, rng)
        on, off = rng.uniform(0.5, 3), rng.uniform(0.5, 3)
        ns.flap(osn, lead, on, off, 20.0)
        return "link OSN %d <-> leader %s flapping (up %.1fs, down %.1fs) for 20s" % (i, lead, on, off), None
    if kind == "clock-step":
        o = net.osns[i]
        fwd, back = rng.randint(1, 20) * 60, -rng.randint(1, 20) * 60
        t1, t2 = rng.uniform(5, 12), rng.uniform(5, 12)
        try:
            set_clock(o, fwd)
            time.sleep(t1)
            set_clock(o, back)
            time.sleep(t2)
        finally:
            set_clock(o, 0)
        return "OSN %d wall clock stepped %+d min for %.1fs, then %+d min for %.1fs, then back" % (
            i, fwd // 60, t1, back // 60, t2), None
    raise ValueError(kind)


def catch_up_seconds(net, within):
    """After a fault healed: seconds until every OSN's height reaches the highest height any OSN
    had at the heal (None: not within `within`)."""
    t0 = time.time()
    target = max([h for h in net.heights() if h is not None] or [0])
    while time.time() - t0 < within:
        hs = net.heights()
        if None not in hs and min(hs) >= target:
            return time.time() - t0
        time.sleep(0.5)
    return None


def inject(kind, net, rng, args):
    """Runs one fault to its end (fault + recovery); returns (description, killed OSN or None)."""
    if kind in NET_KINDS:
        return inject_net(kind, net, rng, args)
    if kind == "broker-kill":
        b = rng.randint(1, 4)
        down = rng.uniform(3, 10)
        kafka("kill-broker", str(b))
        time.sleep(down)
        kafka("start-broker", str(b))
        return "kill -9 broker %d, restarted after %.1fs" % (b, down), None
    if kind == "broker-pause":
        b = rng.randint(1, 4)
        down = rng.uniform(args.pause_min, args.pause_max)
        kafka("pause-broker", str(b))
        try:
            time.sleep(down)
        finally:
            kafka("resume-broker", str(b))
        return "SIGSTOP broker %d for %.1fs, then SIGCONT" % (b, down), None
    if kind == "zk-kill":
        z = rng.randint(1, 3)
        down = rng.uniform(3, 10)
        kafka("kill-zk", str(z))
        time.sleep(down)
        kafka("start-zk", str(z))
        return "kill -9 zk %d, restarted after %.1fs" % (z, down), None
    if kind == "osn-kill":
        i = rng.randrange(len(net.osns))
        down = rng.uniform(1, 5)
        net.kill_osn(i)
        time.sleep(down)
        net.start_osn(i)
        return "kill -9 OSN %d, restarted after %.1fs" % (i, down), i
    if kind == "osn-past-retention":
        i = rng.randrange(len(net.osns))
        down = rng.uniform(3, 8)
        net.kill_osn(i)
        # Its position: the last block it wrote (its chain file may lag; ask a
        # running OSN only for theirs, and take ours from the ledger below).
        time.sleep(down)
        running = [o for o in net.osns if o["i"] != i]
        positions = [net.next_offset(o) for o in running]
        if None in positions:
            net.start_osn(i)
            return "kill -9 OSN %d; running OSNs' positions unknown (%s): not pruned, restarted after %.1fs" % (
                i, positions, down), i
        to = min(positions)
        net.prune(args.brokers, to)
        net.start_osn(i)
        # It must come back by catching up (its next offset is gone).
        deadline = time.time() + 120
        log_path = net.osns[i]["log"]
        tail = ""
        while time.time() < deadline:
            with open(log_path, errors="replace") as f:
                tail = f.read().rsplit("===== ", 1)[-1]
            if "caught up from another OSN" in tail:
                break
            if "Start phase completed successfully" in tail and "cannot resume the Kafka chain" not in tail:
                break
            time.sleep(0.5)
        how = ("caught up from another OSN" if "caught up from another OSN" in tail else
               "resumed from Kafka (its position was not pruned)" if "Start phase completed" in tail else
               "NOT back within 120s")
        return "kill -9 OSN %d, partition pruned below offset %d (running OSNs at %s) after %.1fs, restarted: %s" % (
            i, to, positions, down, how), i
    if kind == "kafka-down":
        down = args.short_total_s + rng.uniform(3, 10)
        for b in range(1, 5):
            kafka("kill-broker", str(b))
        for z in range(1, 4):
            kafka("kill-zk", str(z))
        time.sleep(down)
        kafka("start", "--wait", timeout=600)
        return "kill -9 all brokers and ZooKeeper for %.1fs (> ShortTotal %s), then start" % (
            down, args.short_total), None
    raise ValueError(kind)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rounds", type=int)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--osns", type=int, default=3)
    ap.add_argument("--kinds", default=",".join(DEFAULT_KINDS),
                    help="comma-separated fault kinds to draw from (known: %s)" % ", ".join(KINDS))
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "release"))
    ap.add_argument("--work", default=None, help="work folder (default: a new temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--rate", type=float, default=150.0, help="new tx/s per load generator")
    ap.add_argument("--streams", type=int, default=2, help="streams per load generator")
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--no-exactly-once", dest="exactly_once", action="store_false",
                    help="channel without the RS_EXACTLY_ONCE orderer capability (as Fabric's: "
                         "re-sent envelopes may be ordered twice; the checker accepts that only "
                         "for envelopes a client re-sent)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--pre", type=float, default=3.0, help="seconds of load before the fault")
    ap.add_argument("--post", type=float, default=4.0, help="seconds of new load after the recovery")
    ap.add_argument("--pause-min", type=float, default=12.0)
    ap.add_argument("--pause-max", type=float, default=20.0)
    ap.add_argument("--short-total", default="5s", help="ORDERER_KAFKA_RETRY_SHORTTOTAL")
    ap.add_argument("--batch-timeout", default="500ms")
    ap.add_argument("--max-message-count", type=int, default=50)
    ap.add_argument("--log-spec", default="info")
    ap.add_argument("--converge-timeout", type=float, default=180.0)
    ap.add_argument("--schedule", choices=["random", "cycle"], default="random",
                    help="random: each round draws a kind; cycle: every len(kinds) rounds run each kind once, "
                         "in a seeded order")
    ap.add_argument("--netns", metavar="PREFIX", default=None,
                    help="every ZooKeeper node, broker, OSN and client in its own network namespace "
                         "(scripts/netfault; needs root and nftables); allows the kinds %s" % ",".join(NET_KINDS))
    ap.add_argument("--netns-net", default="10.213.0", help="the namespaces' /24 (first three octets)")
    a = ap.parse_args()
    a.short_total_s = float(a.short_total.rstrip("s"))
    a.bin_dir = os.path.abspath(a.bin_dir)
    kinds = [k for k in a.kinds.split(",") if k]
    for k in kinds:
        if k not in KINDS + NET_KINDS:
            ap.error("unknown fault kind %r (known: %s)" % (k, ", ".join(KINDS + NET_KINDS)))
        if k in NET_KINDS and not a.netns:
            ap.error("fault kind %r needs --netns" % k)
    a.kind_list = kinds
    if a.netns:  # kafka.sh puts its nodes in the same namespaces; its own run dir by default
        os.environ["KAFKA_NETNS"] = a.netns
        os.environ["KAFKA_NETNS_NET"] = a.netns_net
        # never the cluster of the environment (its nodes are not in namespaces)
        os.environ["KAFKA_RUN_DIR"] = os.environ.get("FAULTS_NETNS_KAFKA_RUN_DIR", "/tmp/fabric-kafka-%s" % a.netns)
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 32)
    rng = random.Random(seed)
    log("seed %d (rerun with --seed %d), rounds %d, kinds %s" % (seed, seed, a.rounds, ",".join(kinds)))

    kafka("fetch")
    started_kafka = False
    if kafka("wait", "--timeout", "10", check=False).returncode != 0:
        if os.environ.get("KAFKA_BROKERS") and not a.netns:
            raise SystemExit("KAFKA_BROKERS is set but kafka.sh finds no running cluster: "
                             "set the KAFKA_RUN_DIR/KAFKA_*_PORT_BASE of that cluster")
        log("no running Kafka cluster: starting one")
        kafka("down", check=False)
        kafka("start", "--wait", timeout=600)
        started_kafka = True
    brokers = kafka("brokers").stdout.strip().split(",")
    a.brokers = brokers
    work = a.work or tempfile.mkdtemp(prefix="faults-")
    os.makedirs(work, exist_ok=True)
    os.makedirs(os.path.join(work, "acks"), exist_ok=True)
    os.makedirs(os.path.join(work, "resent"), exist_ok=True)
    log("work folder %s; brokers %s" % (work, ",".join(brokers)))
    net = Net(a, work)
    net.brokers = brokers
    stalls = {}  # kind -> longest time in which no client got an acknowledgement
    catch_up = {}  # kind -> worst seconds until every OSN had what any OSN had at the heal
    totals = {"rounds": 0, "acknowledged": 0, "lost": 0, "duplicated": 0, "divergent": 0,
              "osn_deaths": 0, "check_failures": 0, "given_up": 0, "resent": 0, "resent_copies": 0}
    failed = False
    try:
        net.setup(brokers)
        log("channel %s on %d OSNs (ports %s)" % (net.channel, len(net.osns),
                                                  ",".join(net.osn_address(o) for o in net.osns)))
        for r in range(1, a.rounds + 1):
            if a.schedule == "cycle":
                if (r - 1) % len(kinds) == 0:
                    cycle = kinds[:]
                    rng.shuffle(cycle)
                kind = cycle[(r - 1) % len(kinds)]
            else:
                kind = rng.choice(kinds)
            t0 = time.time()
            # Duration of new load: the fault's longest possible length plus margins.
            longest = {"broker-kill": 10, "broker-pause": a.pause_max, "zk-kill": 10, "osn-kill": 5,
                       "kafka-down": a.short_total_s + 10 + 30, "osn-past-retention": 15, "leader-isolated": 25,
                       "osn-leader-cut": 20, "osn-brokers-cut": a.short_total_s + 10, "brokers-split": 25,
                       "link-flap": 20, "clock-step": 24}[kind]
            duration = a.pre + longest + a.post
            loads = []
            for i, o in enumerate(net.osns):
                others = ",".join(net.osn_address(x) for x in net.osns if x is not o)
                ack = os.path.join(work, "acks", "r%03d-c%d.log" % (r, i))
                resends = os.path.join(work, "resent", "r%03d-c%d.log" % (r, i))
                out = open(os.path.join(work, "acks", "r%03d-c%d.out" % (r, i)), "w")
                cmd = net.client_base(o) + [
                    "broadcast", "--ack-log", ack, "--resend-log", resends,
                    "--servers", others, "--duration", str(duration),
                    "--streams", str(a.streams), "--window", str(a.batch), "--size", str(a.size),
                    "--rate", str(a.rate), "--response-timeout", "8", "--resend-for", "90", "--json"]
                loads.append((subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT), out))
            watch = AckWatch([os.path.join(work, "acks", "r%03d-c%d.log" % (r, i)) for i in range(len(net.osns))])
            time.sleep(a.pre)
            desc, killed = inject(kind, net, rng, a)
            caught = catch_up_seconds(net, a.converge_timeout)  # from the heal (or restart) on
            # Everything back: Kafka nodes (start starts only missing ones), OSNs.
            kafka("start", "--wait", timeout=600)
            catch_up[kind] = max(catch_up.get(kind, 0.0), float("inf") if caught is None else caught)
            desc += "; every OSN caught up %s" % ("in %.1fs" % caught if caught is not None else "NOT within %.0fs" %
                                                  a.converge_timeout)
            deaths = []
            for o in net.osns:
                if o["i"] != killed and o["proc"].poll() is not None:
                    deaths.append(o["i"])
                    log("VIOLATION: OSN %d died (exit %s) though not killed; restarting" %
                        (o["i"], o["proc"].returncode))
                    net.start_osn(o["i"])
            for p, out in loads:
                try:
                    p.wait(timeout=duration + 300)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                out.close()
            stall = watch.finish()
            desc += "; longest a client went without an acknowledgement %.1fs" % stall
            stalls[kind] = max(stalls.get(kind, 0.0), stall)
            load = {"acknowledged": 0, "resent": 0, "given_up": 0, "refused": {}}
            for i in range(len(net.osns)):
                path = os.path.join(work, "acks", "r%03d-c%d.out" % (r, i))
                try:
                    with open(path) as f:
                        txt = f.read()
                    j = json.loads(txt[txt.index("{"):])
                    for k in ("acknowledged", "resent", "given_up"):
                        load[k] += j[k]
                    for k, v in j["refused"].items():
                        load["refused"][k] = load["refused"].get(k, 0) + v
                except (OSError, ValueError) as e:
                    log("load generator %d: no report (%s): see %s" % (i, e, path))
            for o in net.osns:
                if o["i"] not in deaths and o["proc"].poll() is not None:
                    deaths.append(o["i"])
                    log("VIOLATION: OSN %d died (exit %s) under load; restarting" % (o["i"], o["proc"].returncode))
                    net.start_osn(o["i"])
            # Heights agree and are stable.
            deadline = time.time() + a.converge_timeout
            last = None
            while True:
                hs = [net.height(o) for o in net.osns]
                if None not in hs and len(set(hs)) == 1 and hs == last:
                    break
                if time.time() > deadline:
                    log("heights did not converge: %s" % hs)
                    break
                last = hs
                time.sleep(1.5)
            ok_fetch = all(net.fetch(o) for o in net.osns)
            acks = sorted(glob.glob(os.path.join(work, "acks", "*.log")))
            mode = ["--duplicates", "none"]
            if not a.exactly_once:
                mode = ["--duplicates", "resent", "--resent",
                        *sorted(glob.glob(os.path.join(work, "resent", "*.log")))]
            chk = subprocess.run([sys.executable, CHECKER, "--json", "--acks", *acks] + mode +
                                 sum((["--chain", "osn%d=%s" % (o["i"], o["chain"])] for o in net.osns), []),
                                 capture_output=True, text=True)
            try:
                rep = json.loads(chk.stdout)
            except ValueError:
                rep = {"acknowledged": 0, "lost": 0, "duplicated": 0, "divergent": 0,
                       "violations": ["checker failed: %s" % chk.stderr[-1000:]], "height": 0}
            totals["rounds"] += 1
            totals["acknowledged"] = rep["acknowledged"]
            totals["lost"] = max(totals["lost"], rep["lost"])
            totals["duplicated"] = max(totals["duplicated"], rep["duplicated"])
            totals["resent_copies"] = max(totals["resent_copies"], rep.get("resent_copies", 0))
            totals["divergent"] = max(totals["divergent"], rep["divergent"])
            totals["osn_deaths"] += len(deaths)
            totals["given_up"] += load["given_up"]
            totals["resent"] += load["resent"]
            bad = bool(rep["violations"]) or deaths or not ok_fetch or chk.returncode != 0
            if bad:
                totals["check_failures"] += 1
                failed = True
            log("round %d/%d %-12s %s | load acked %d resent %d given-up %d refused %s | chain height %d, "
                "acknowledged so far %d, lost %d, duplicated %d, divergent %d, re-sent copies in chain %d "
                "| %s (%.0fs)" % (
                    r, a.rounds, kind, desc, load["acknowledged"], load["resent"], load["given_up"],
                    load["refused"] or "{}", rep["height"], rep["acknowledged"], rep["lost"], rep["duplicated"],
                    rep["divergent"], rep.get("resent_copies", 0), "FAIL" if bad else "ok", time.time() - t0))
            rss = [net.rss_mib(o) for o in net.osns]
            for o, m in zip(net.osns, rss):
                if m is not None:
                    o.setdefault("rss", []).append((r, m))
            log("  OSN RSS MiB after round %d: %s" % (r, ", ".join(
                "osn%d=%s" % (o["i"], "-" if m is None else "%.1f" % m) for o, m in zip(net.osns, rss))))
            for v in rep["violations"][:10]:
                log("  violation: %s" % v)
            if not ok_fetch:
                log("  violation: could not fetch every OSN's chain")
    except Exception as e:  # report what was done so far, then fail
        log("ERROR: %s" % e)
        failed = True
    finally:
        net.stop_all()
        if net.ns:
            net.ns.heal()
            net.ns.remove(*["osn%d" % o["i"] for o in net.osns])
        if started_kafka:
            kafka("down", check=False)
    for kind, worst in sorted(catch_up.items()):
        log("%-16s worst catch-up after the heal %s, longest stall of acknowledgements %.1fs" % (
            kind, "%.1fs" % worst if worst != float("inf") else "never", stalls.get(kind, 0.0)))
    # Before the summary, which stays the last line (e2e_fault_rounds reads it).
    for o in net.osns:
        series = o.get("rss") or []
        if series:
            vals = [m for _, m in series]
            log("OSN %d RSS MiB since its last start (rounds %d..%d): first %.1f, min %.1f, max %.1f, last %.1f" % (
                o["i"], series[0][0], series[-1][0], vals[0], min(vals), max(vals), vals[-1]))
    log("seed %d: exactly-once %s, rounds %d, transactions acknowledged %d, lost %d, duplicated %d, "
        "divergent blocks %d, OSN deaths %d, re-sent %d, re-sent copies in chain %d, given up (never "
        "acknowledged) %d => %s" % (
            seed, "on" if a.exactly_once else "off", totals["rounds"], totals["acknowledged"], totals["lost"],
            totals["duplicated"], totals["divergent"], totals["osn_deaths"], totals["resent"],
            totals["resent_copies"], totals["given_up"], "FAIL" if failed else "PASS"))
    if not a.keep and not failed and not a.work:
        shutil.rmtree(work, ignore_errors=True)
    elif failed:
        log("kept %s for inspection" % work)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
