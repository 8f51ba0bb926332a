#!/usr/bin/env python3
"""acerelay soak: an hour of churn, watching for growth and crashes (not part of CI).

Starts the engine simulator and `acerelay serve` against it, then for
--duration seconds:
  * players join and leave at random across --contents contents, some zapping
    straight from one content to the next;
  * every --fault-every seconds the simulator is told to misbehave (stall,
    clean EOF, garbage, hang, frozen livepos, or the whole engine dying for a
    few seconds), rotating through the kinds;
  * /ace/status, /metrics and /orchestrator/status are polled;
  * every --sample-every seconds acerelay's RSS, open fds, threads and memfd
    history bytes are sampled.

At the end it prints the samples and, for each measure, the growth of the last
minute's mean over the mean of the minute after --settle (default 600 s): the
target is at most 5 %. A crash (the process gone) fails the run at once.

    swift build -c release --product acerelay --product acestream-engine-sim
    python3 perf/soak.py                      # one hour
    python3 perf/soak.py --duration 900 --settle 300   # a shorter look

Everything runs on 127.0.0.1 and every process it starts is stopped on exit.
"""

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from harness import free_port, stop, wait_port

PERF = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(PERF)
OUT = os.path.join(PERF, "out")
FAULTS = ["stall", "eof", "garbage", "hang", "frozen", "die"]


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def bin_dir(arg):
    if arg:
        return arg
    for config in ("release", "debug"):
        d = os.path.join(ROOT, ".build", config)
        if os.path.exists(os.path.join(d, "acerelay")):
            return d
    sys.exit("no acerelay binary: run `swift build -c release` or pass --bin-dir")


def relay_pid(bins, port):
    exe = os.path.realpath(os.path.join(bins, "acerelay"))
    for line in subprocess.check_output(["pgrep", "-f", f"serve --listen 127.0.0.1:{port}"]).split():
        try:
            if os.path.realpath(f"/proc/{int(line)}/exe") == exe:
                return int(line)
        except OSError:
            continue
    sys.exit("cannot find the acerelay process")


# ---- what is sampled ----------------------------------------------------------

def live_memory(api_port):
    """What is live, from acerelay's own gauges: malloc's bytes in use and SQLite's.
    Beside RSS they tell growth of live data from memory malloc keeps after a free.
    Empty when /metrics does not answer (the sample still counts)."""
    wanted = {"acerelay_process_heap_in_use_bytes": "heap_mb", "acerelay_store_sqlite_memory_bytes": "sqlite_mb"}
    found = {}
    try:
        for line in get(f"http://127.0.0.1:{api_port}/metrics").decode().splitlines():
            name, _, value = line.partition(" ")
            if name in wanted:
                found[wanted[name]] = float(value) / 2**20
    except Exception:  # noqa: BLE001 -- a failed scrape leaves these out of this sample
        pass
    return found


def proc_sample(pid):
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, val = line.partition(":")
            status[key] = val.strip()
    fds = os.listdir(f"/proc/{pid}/fd")
    memfd = 0
    for fd in fds:
        path = f"/proc/{pid}/fd/{fd}"
        try:
            if os.readlink(path).startswith("/memfd:"):
                memfd += os.stat(path).st_blocks * 512
        except OSError:
            continue
    return {
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        # RSS split: anonymous (heap, stacks) is what a leak grows; file is code pages touched so far.
        "anon_mb": int(status["RssAnon"].split()[0]) / 1024,
        "file_mb": int(status["RssFile"].split()[0]) / 1024,
        "fds": len(fds),
        "threads": int(status["Threads"]),
        "history_mb": memfd / 2**20,
    }


# ---- load ----------------------------------------------------------------------

class Churn:
    """Players that join, watch a while, leave or zap, across a fixed set of contents."""

    def __init__(self, port, contents, players, stop):
        self.port, self.contents, self.stop = port, contents, stop
        self.players = players
        self.lock = threading.Lock()
        self.counts = {"sessions": 0, "bytes": 0, "refused": 0, "errors": 0}

    def count(self, key, n=1):
        with self.lock:
            self.counts[key] += n

    def player(self, rng):
        while not self.stop.is_set():
            content = rng.choice(self.contents)
            watch = rng.uniform(2, 40)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                    s.sendall(f"GET /ace/getstream?id={content} HTTP/1.1\r\nHost: soak\r\n"
                              f"User-Agent: soak\r\n\r\n".encode())
                    s.settimeout(30)
                    head = s.recv(4096)
                    if not head.startswith(b"HTTP/1.1 200"):
                        self.count("refused")
                        time.sleep(1)
                        continue
                    self.count("sessions")
                    end = time.time() + watch
                    while time.time() < end and not self.stop.is_set():
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        self.count("bytes", len(chunk))
            except OSError:
                self.count("errors")
                time.sleep(0.5)
            # Half the players zap straight on; the rest pause as a viewer would.
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0, 5))

    def start(self):
        for i in range(self.players):
            threading.Thread(target=self.player, args=(random.Random(i),), daemon=True).start()


def pollers(relay_port, api_port, stop, failures):
    urls = [f"http://127.0.0.1:{relay_port}/ace/status", f"http://127.0.0.1:{api_port}/metrics",
            f"http://127.0.0.1:{api_port}/orchestrator/status", f"http://127.0.0.1:{api_port}/streams"]
    while not stop.is_set():
        for url in urls:
            try:
                get(url)
            except Exception as e:  # noqa: BLE001 -- any failure is counted, the soak goes on
                failures.append((time.time(), url, str(e)))
        stop.wait(2)


def faults(sim_url, contents, every, stop, record):
    rng = random.Random(7)
    i = 0
    while not stop.wait(every):
        kind = FAULTS[i % len(FAULTS)]
        i += 1
        content = rng.choice(contents)
        try:
            if kind == "stall":
                get(f"{sim_url}/sim/fault?id={content}&kind=stall&seconds=20")
            elif kind in ("eof", "garbage"):
                get(f"{sim_url}/sim/fault?id={content}&kind={kind}&bytes=1000")
            elif kind in ("hang", "frozen", "die"):
                scope = "" if kind == "die" else content
                get(f"{sim_url}/sim/fault?id={scope}&kind={kind}")
                stop.wait(5 if kind == "die" else 20)
                get(f"{sim_url}/sim/fault?id={scope}&kind=clear")
            record.append((time.time(), kind, content))
        except Exception as e:  # noqa: BLE001
            record.append((time.time(), kind + " (failed to set: " + str(e) + ")", content))


# ---- run -------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=3600)
    ap.add_argument("--settle", type=float, default=600, help="growth is measured from this point (s)")
    ap.add_argument("--contents", type=int, default=50)
    ap.add_argument("--players", type=int, default=60, help="concurrent player loops")
    ap.add_argument("--fault-every", type=float, default=60)
    ap.add_argument("--sample-every", type=float, default=10)
    ap.add_argument("--bin-dir")
    ap.add_argument("--wrap", default="", help="command to run acerelay under, e.g. 'heaptrack -o perf/out/soak'")
    args = ap.parse_args()
    if args.settle + 120 > args.duration:
        sys.exit("--duration must leave at least two minutes after --settle")

    os.makedirs(OUT, exist_ok=True)
    bins = bin_dir(args.bin_dir)
    data_dir = tempfile.mkdtemp(prefix="acerelay-soak-")
    procs = []

    def cleanup(*_):
        for p in procs:
            stop(p)
        shutil.rmtree(data_dir, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *_: (cleanup(), sys.exit(1)))
    bound = str(int(args.duration + 120))
    logf = open(os.path.join(OUT, "soak-acerelay.log"), "w")

    sim_port = free_port()
    sim = subprocess.Popen(["timeout", bound, os.path.join(bins, "acestream-engine-sim"),
                            "--http-port", str(sim_port), "--synthetic-bitrate", "2000000"],
                           stdout=subprocess.DEVNULL, stderr=logf)
    procs.append(sim)
    wait_port(sim_port, sim)
    sim_url = f"http://127.0.0.1:{sim_port}"

    relay_port, api_port = free_port(), free_port()
    relay = subprocess.Popen(["timeout", bound] + args.wrap.split() + [os.path.join(bins, "acerelay"), "serve",
                              "--listen", f"127.0.0.1:{relay_port}", "--api-listen", f"127.0.0.1:{api_port}",
                              "--engine", sim_url, "--provision", "off", "--data-dir", data_dir,
                              "--grace-period", "5", "--workers", "2",
                              # every player loop comes from 127.0.0.1: no per-address bound here
                              "--max-contents-per-address", "0"],
                             stdout=logf, stderr=logf)
    procs.append(relay)
    wait_port(relay_port, relay)
    wait_port(api_port, relay)
    # `timeout` (and any --wrap) stand between: find the process that is the binary itself.
    pid = relay_pid(bins, relay_port)
    log(f"acerelay pid {pid} on {relay_port}/{api_port}, simulator on {sim_port}, binaries {bins}")

    stop = threading.Event()
    contents = [secrets.token_hex(20) for _ in range(args.contents)]
    churn = Churn(relay_port, contents, args.players, stop)
    poll_failures, fault_log = [], []
    churn.start()
    threading.Thread(target=pollers, args=(relay_port, api_port, stop, poll_failures), daemon=True).start()
    threading.Thread(target=faults, args=(sim_url, contents, args.fault_every, stop, fault_log),
                     daemon=True).start()

    samples, crashed = [], None
    start = time.time()
    try:
        while time.time() - start < args.duration:
            time.sleep(args.sample_every)
            if relay.poll() is not None:
                crashed = f"acerelay exited with {relay.returncode}"
                break
            s = proc_sample(pid)
            s.update(live_memory(api_port))
            s["t"] = round(time.time() - start)
            samples.append(s)
            log(f"t={s['t']:5d}s rss={s['rss_mb']:.1f}MB (anon {s['anon_mb']:.1f}, file {s['file_mb']:.1f}) "
                f"fds={s['fds']} threads={s['threads']} "
                f"history={s['history_mb']:.1f}MB heap={s.get('heap_mb', 0):.1f}MB sqlite={s.get('sqlite_mb', 0):.1f}MB "
                f"sessions={churn.counts['sessions']}")
    finally:
        stop.set()
        cleanup()

    def window_mean(key, lo, hi):
        vals = [s[key] for s in samples if lo <= s["t"] < hi and key in s]
        return statistics.mean(vals) if vals else None

    growth = {}
    end_t = samples[-1]["t"] if samples else 0
    for key in ("rss_mb", "anon_mb", "file_mb", "heap_mb", "sqlite_mb", "fds", "threads", "history_mb"):
        base = window_mean(key, args.settle, args.settle + 60)
        last = window_mean(key, end_t - 60, end_t + 1)
        growth[key] = None if not base or last is None else (last - base) / base * 100
    result = {"args": vars(args), "crashed": crashed, "samples": samples, "growth_pct": growth,
              "counts": churn.counts, "poll_failures": len(poll_failures), "faults": len(fault_log)}
    with open(os.path.join(OUT, "soak.json"), "w") as f:
        json.dump(result, f, indent=1)

    print(f"duration {end_t} s, {args.contents} contents, {args.players} player loops, "
          f"{len(fault_log)} faults, {churn.counts['sessions']} player sessions, "
          f"{churn.counts['bytes'] / 2**30:.1f} GiB delivered, {churn.counts['refused']} refused, "
          f"{churn.counts['errors']} connection errors, {len(poll_failures)} failed polls")
    print("| measure | mean of the minute after settle | mean of the last minute | growth |")
    print("|---|---|---|---|")
    ok = crashed is None
    for key, g in growth.items():
        base = window_mean(key, args.settle, args.settle + 60)
        last = window_mean(key, end_t - 60, end_t + 1)
        fmt = "n/a" if g is None else f"{g:+.1f} %"
        print(f"| {key} | {base if base is None else round(base, 1)} | "
              f"{last if last is None else round(last, 1)} | {fmt} |")
        # History bytes follow how many contents happen to be open; they, and RSS's parts, are shown, not judged.
        if key in ("rss_mb", "fds", "threads") and g is not None and g > 5:
            ok = False
    print("crashes: " + (crashed or "0"))
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
