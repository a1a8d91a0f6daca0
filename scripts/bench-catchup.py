#!/usr/bin/env python3
"""Catch-up speed (issue #15): how fast a new OSN gets a channel's chain by
pulling the blocks from another OSN (Deliver, each block verified, then
appended), against the same new OSN replaying the channel's Kafka partition
(nothing pruned). Not a test; see scripts/bench-catchup.sh.

On the Kafka cluster of scripts/kafka/kafka.sh (the KAFKA_* environment),
with the release binaries: one OSN A (the fixtures of scripts/faults/faults.py)
orders TX signed envelopes of SIZE bytes (orderer-client broadcast) into
blocks of at most BATCH envelopes. Then, one after the other, with fresh
ledgers and only the genesis block:
  replay  a new OSN with Kafka.CatchUp.PullThreshold at its maximum: it
          consumes the partition from offset 0 and cuts the blocks itself;
  pull    a new OSN with PullThreshold 1 and Kafka.CatchUp.Sources = A: it
          pulls A's blocks, verifies and appends each, then consumes Kafka
          from the last one's offsets.
Each is timed from its process start until Deliver reports A's height
(start-up included), and for the phase alone (replay: from "Start phase
completed" in its log; pull: the "pulled ahead" log line's seconds). Prints
blocks/s, tx/s and MB/s (ledger bytes) of both and their ratio; --json too.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "faults"))
import faults  # noqa: E402  (the fault-injection fixtures: crypto, genesis, OSN processes)

TS = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) UTC")


def log_time(path, needle):
    """The wall-clock time (epoch seconds) of the first log line holding needle."""
    with open(path, errors="replace") as f:
        for line in f:
            if needle in line:
                m = TS.match(line)
                if m:
                    t = time.strptime(m.group(1)[:19], "%Y-%m-%d %H:%M:%S")
                    import calendar
                    return calendar.timegm(t) + float("0" + m.group(1)[19:])
    return None


def ledger_bytes(ledger, channel):
    d = os.path.join(ledger, "chains", channel)
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.startswith("blockfile"))


def timed_start(net, name, env, want, timeout):
    """Starts a new OSN with env; returns (seconds until it serves height want, its dict)."""
    o = {"i": len(net.osns), "host": "127.0.0.1", "port": faults.free_port(), "ops": faults.free_port(),
         "ledger": os.path.join(net.work, name, "ledger"), "log": os.path.join(net.work, name + ".log"),
         "proc": None, "chain": os.path.join(net.work, name + ".chain"), "have": 0}
    net.osns.append(o)
    t0 = time.time()
    net.start_osn(o["i"], env)
    while True:
        h = net.height(o)
        if h is not None and h >= want:
            return time.time() - t0, t0, o
        if o["proc"].poll() is not None or time.time() - t0 > timeout:
            raise RuntimeError("%s: height %s of %d (see %s)" % (name, h, want, o["log"]))
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tx", type=int, default=20000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=100, help="BatchSize.MaxMessageCount")
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--bin-dir", default=os.path.join(faults.ROOT, "target", "release"))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    brokers = faults.kafka("brokers").stdout.strip().split(",")
    work = tempfile.mkdtemp(prefix="bench-catchup-")
    args = types.SimpleNamespace(bin_dir=os.path.abspath(a.bin_dir), osns=1, exactly_once=False,
                                 batch_timeout="1s", max_message_count=a.batch, short_total="30s",
                                 log_spec="info", netns=None, netns_net="10.213.0", kind_list=[])
    net = faults.Net(args, work)
    try:
        net.setup(brokers)
        src = net.osns[0]
        t = time.time()
        r = subprocess.run(net.client_base(src) + [
            "broadcast", "--count", str(a.tx), "--size", str(a.size), "--streams", str(a.streams),
            "--no-follow", "--json"], capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            raise RuntimeError("load failed: %s %s" % (r.stdout[-800:], r.stderr[-800:]))
        load = json.loads(r.stdout[r.stdout.index("{"):])
        # A's height once stable (the last partial batch is cut by BatchTimeout).
        last, stable = None, 0
        while stable < 3:
            h = net.height(src)
            stable = stable + 1 if h == last else 0
            last = h
            time.sleep(0.7)
        height = last
        nbytes = ledger_bytes(src["ledger"], net.channel)
        faults.log("A: %d tx acknowledged in %.1fs, height %d, ledger %.1f MB" % (
            load["success"], time.time() - t, height, nbytes / 1e6))
        results = {}
        for name, env in [
            ("replay", {"ORDERER_KAFKA_CATCHUP_PULLTHRESHOLD": str((1 << 63) - 1)}),
            ("pull", {"ORDERER_KAFKA_CATCHUP_PULLTHRESHOLD": "1",
                      "ORDERER_KAFKA_CATCHUP_SOURCES": "[127.0.0.1:%d]" % src["port"]}),
        ]:
            total, t0, o = timed_start(net, name, env, height, 1800)
            if name == "replay":
                began = log_time(o["log"], "Start phase completed successfully")
                phase = (t0 + total) - began if began else None
            else:
                with open(o["log"], errors="replace") as f:
                    line = next((x for x in f if "pulled ahead from other OSNs" in x), "")
                m = re.search(r" seconds=([0-9.]+)", line)
                pulled = re.search(r" pulled=(\d+)", line)
                if not m or not pulled or int(pulled.group(1)) != height - 1:
                    raise RuntimeError("pull: did not pull all %d blocks: %s" % (height - 1, line))
                phase = float(m.group(1))
            blocks = height - 1
            results[name] = {"seconds_total": total, "seconds_phase": phase, "blocks": blocks,
                             "tx": load["success"], "bytes": nbytes,
                             "blocks_per_s": blocks / phase, "tx_per_s": load["success"] / phase,
                             "mb_per_s": nbytes / 1e6 / phase}
            faults.log("%-6s: height %d after %.2fs from process start; the %s phase %.2fs: %.0f blocks/s, "
                       "%.0f tx/s, %.1f MB/s" % (name, height, total, name, phase, blocks / phase,
                                                 load["success"] / phase, nbytes / 1e6 / phase))
            o["proc"].terminate()
            o["proc"].wait(timeout=30)
        ratio = results["replay"]["seconds_phase"] / results["pull"]["seconds_phase"]
        ratio_total = results["replay"]["seconds_total"] / results["pull"]["seconds_total"]
        faults.log("pull/replay speed: %.2fx (phase), %.2fx (from process start); %d tx of %d B in blocks "
                   "of <= %d, %.1f records per block" % (ratio, ratio_total, a.tx, a.size, a.batch,
                                                          a.tx / max(height - 1, 1)))
        if a.json:
            print(json.dumps({"tx": a.tx, "size": a.size, "batch": a.batch, "height": height,
                              "results": results, "speedup_phase": ratio, "speedup_total": ratio_total}))
    finally:
        net.stop_all()
        if not a.keep:
            import shutil
            shutil.rmtree(work, ignore_errors=True)
        else:
            faults.log("kept %s" % work)


if __name__ == "__main__":
    main()
