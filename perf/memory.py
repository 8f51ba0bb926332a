#!/usr/bin/env python3
"""Memory per hub and per player of `acerelay serve`, measured from outside.

Starts the engine simulator and acerelay on 127.0.0.1, then
  1. opens HUBS contents, one reading player each, and waits until every
     history has filled its window (--history-seconds);
  2. adds PLAYERS readers to one of those contents.
After each step it samples the relay's history bytes (/ace/status), its RSS
(/proc/PID/status) and the host's Shmem (/proc/meminfo: memfd pages live there,
not in the RSS), and prints what each hub and each player costs.

    python3 perf/memory.py                       # debug build, 8 hubs, 200 players
    python3 perf/memory.py --bin .build/release  # a release build
"""
import argparse
import json
import os
import random
import select
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

from harness import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def meminfo_kib(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def status(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ace/status", timeout=5) as r:
        return json.load(r)


class Readers:
    """Player sockets read by one thread, as fast as the relay sends."""

    def __init__(self):
        self.sockets = []
        self.lock = threading.Lock()
        self.running = True
        threading.Thread(target=self.loop, daemon=True).start()

    def add(self, port, content):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(f"GET /ace/getstream?id={content} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        s.setblocking(False)
        with self.lock:
            self.sockets.append(s)

    def loop(self):
        while self.running:
            with self.lock:
                sockets = list(self.sockets)
            if not sockets:
                time.sleep(0.05)
                continue
            readable, _, _ = select.select(sockets, [], [], 0.1) if len(sockets) < 1000 else (sockets, [], [])
            for s in readable:
                try:
                    s.recv(1 << 18)
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    pass

    def close(self):
        self.running = False
        for s in self.sockets:
            s.close()


def sample(pid, port):
    st = status(port)
    return {"history": st.get("history_bytes", 0), "rss": rss_kib(pid) * 1024, "shmem": meminfo_kib("Shmem") * 1024,
            "players": st.get("player_count", 0), "hubs": st.get("streams", 0)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build/debug"), help="directory holding acerelay and acestream-engine-sim")
    parser.add_argument("--hubs", type=int, default=8)
    parser.add_argument("--players", type=int, default=200)
    parser.add_argument("--bitrate", type=int, default=4_000_000, help="simulator bit/s")
    parser.add_argument("--history-seconds", type=int, default=20)
    args = parser.parse_args()

    sim_port, stream_port, api_port = free_port(), free_port(), free_port()
    sim = subprocess.Popen([f"{args.bin}/acestream-engine-sim", "--http-port", str(sim_port), "--synthetic-bitrate", str(args.bitrate),
                            "--log-level", "warning"], stderr=subprocess.DEVNULL)
    data = tempfile.mkdtemp(prefix="acerelay-memory-")
    relay = subprocess.Popen([f"{args.bin}/acerelay", "serve", "--listen", f"127.0.0.1:{stream_port}", "--api-listen", f"127.0.0.1:{api_port}",
                              "--engine", f"http://127.0.0.1:{sim_port}", "--provision", "off", "--data-dir", data,
                              "--history-seconds", str(args.history_seconds), "--max-contents-per-address", "0",
                              "--log-level", "warning"], stderr=subprocess.DEVNULL)
    readers = Readers()
    try:
        for _ in range(100):
            try:
                status(stream_port)
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(1)
        idle = sample(relay.pid, stream_port)

        contents = ["%040x" % random.getrandbits(160) for _ in range(args.hubs)]
        for content in contents:
            readers.add(stream_port, content)
        # The window fills in --history-seconds once the bitrate is measured; then it
        # only moves, in 2 MiB punches: wait until two samples 3 s apart agree.
        time.sleep(args.history_seconds)
        hubs = sample(relay.pid, stream_port)
        for _ in range(20):
            time.sleep(3)
            later = sample(relay.pid, stream_port)
            settled = abs(later["history"] - hubs["history"]) <= args.hubs * (2 << 20)
            hubs = later
            if settled:
                break

        for _ in range(args.players):
            readers.add(stream_port, contents[0])
        time.sleep(5)
        players = sample(relay.pid, stream_port)
    finally:
        readers.close()
        relay.terminate()
        sim.terminate()
        relay.wait(10)
        sim.wait(10)

    window = args.history_seconds * args.bitrate / 8
    mib = 1 << 20
    print(f"acerelay memory ({args.bin}), simulator {args.bitrate / 1e6:g} Mbit/s, --history-seconds {args.history_seconds} "
          f"(window {window / mib:.1f} MiB)")
    print(f"{'step':<28}{'hubs':>6}{'players':>9}{'history MiB':>13}{'RSS MiB':>10}{'Shmem MiB':>11}")
    for name, s in (("idle", idle), (f"{args.hubs} hubs, 1 player each", hubs), (f"+{args.players} players on one", players)):
        print(f"{name:<28}{s['hubs']:>6}{s['players']:>9}{s['history'] / mib:>13.1f}{s['rss'] / mib:>10.1f}{s['shmem'] / mib:>11.1f}")
    n = max(hubs["hubs"], 1)
    print(f"per hub:    history {(hubs['history'] - idle['history']) / n / mib:.2f} MiB, "
          f"Shmem {(hubs['shmem'] - idle['shmem']) / n / mib:.2f} MiB, RSS {(hubs['rss'] - idle['rss']) / n / 1024:.0f} KiB")
    added = max(players["players"] - hubs["players"], 1)
    print(f"per player: RSS {(players['rss'] - hubs['rss']) / added / 1024:.1f} KiB, "
          f"history {(players['history'] - hubs['history']) / added:.0f} bytes (players share their hub's history; "
          "what moves is the windows' 2 MiB punch steps)")
    print("Shmem is the whole host's: other processes move it too.")


if __name__ == "__main__":
    main()
