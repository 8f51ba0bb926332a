#!/usr/bin/env python3
"""Channel failover time: how long a player of /ace/channel/{id} goes without
real packets when the engine of its source dies, with warm standby.

Starts three engine simulators and `acerelay serve` in front of them (static
engines, a temporary data directory), creates one channel of 3 x SWITCHES
sources through the control API, and plays it with one packet-level reader.
Then, SWITCHES times: waits until the player has had a few seconds of steady
stream and the channel's standby source is live, kills the engine of the
playing source (`/sim/fault?kind=die&seconds=2`), and waits for the switch. A switch is
the first packet whose adaptation field carries a PCR with the
discontinuity_indicator set (the relay marks the first PCR of each clock after
a switch). Measured per switch, at the player:

  gap     last real (non-null) packet of the old source -> first real packet of the new one
          (0 when real packets never paused longer than 50 ms: the relay's send batching)
  marked  the kill -> the first marked PCR

The killed engine revives itself 2 s later; the source it played stays failed for
the channel (score 0) until it measures well again, which is why every switch
has a fresh source. Prints p50/p95/max and writes perf/out/failover.json.

    python3 perf/failover.py [--bin-dir .build/release] [--switches 20]
"""
import argparse
import json
import os
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

from harness import free_port, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")


def http(url, method="GET", body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read()
        return json.loads(text) if text else None


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Reader(threading.Thread):
    """Reads the player's body, timing packets: real ones, pauses, marked PCRs."""

    PAUSE = 0.05  # a shorter pause is send batching (the relay flushes every 20 ms)

    def __init__(self, port, path):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("closed before the response head")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status + b" ":
            raise RuntimeError(f"channel answered {status!r}")
        self.carry = head.split(b"\r\n\r\n", 1)[1]
        self.lock = threading.Lock()
        self.last_real = None
        self.pause_from = None
        self.pause_until = None
        self.marks = []  # (time, gap)
        self.real_since_mark = 0
        self.misaligned = 0
        self.closed = False

    def run(self):
        while True:
            try:
                chunk = self.sock.recv(262144)
            except OSError:
                chunk = b""
            now = time.monotonic()
            if not chunk:
                self.closed = True
                return
            data = self.carry + chunk
            whole = len(data) - len(data) % 188
            with self.lock:
                for i in range(0, whole, 188):
                    if data[i] != 0x47:
                        self.misaligned += 1
                        continue
                    pid = (data[i + 1] & 0x1F) << 8 | data[i + 2]
                    if pid == 0x1FFF:
                        continue
                    if self.last_real is not None and now - self.last_real > self.PAUSE:
                        self.pause_from, self.pause_until = self.last_real, now
                    self.last_real = now
                    self.real_since_mark += 1
                    if (data[i + 3] >> 4) & 2 and data[i + 4] >= 7 and data[i + 5] & 0x10 and data[i + 5] & 0x80:
                        gap = (self.pause_until - self.pause_from) if self.pause_from is not None else 0.0
                        self.marks.append((now, gap))
                        self.pause_from = self.pause_until = None
                        self.real_since_mark = 0
            self.carry = data[whole:]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", default=os.path.join(HERE, "..", ".build", "release"))
    parser.add_argument("--switches", type=int, default=20)
    parser.add_argument("--engines", type=int, default=3)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of steady stream before each kill")
    parser.add_argument("--no-standby", action="store_true", help="CHANNEL_WARM_STANDBY=false, for comparison")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    media = os.path.join(OUT, "failover-media.ts")
    if not os.path.exists(media):
        subprocess.check_call(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
                               "-f", "lavfi", "-i", "sine=frequency=440", "-t", "10", "-c:v", "libx264", "-g", "25",
                               "-b:v", "2M", "-c:a", "aac", "-f", "mpegts", media])
    procs = []
    data_dir = tempfile.mkdtemp(prefix="acerelay-failover-")
    try:
        sims = []
        for _ in range(args.engines):
            port = free_port()
            proc = subprocess.Popen([os.path.join(args.bin_dir, "acestream-engine-sim"), "--http-port", str(port), "--media", media],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(proc)
            wait_port(port, proc)
            sims.append(port)
        stream_port, api_port = free_port(), free_port()
        # The switch limit (6 a minute by default) would hold the player after six quick kills.
        env = dict(os.environ, CHANNEL_PROBE_INTERVAL_S="86400", CHANNEL_MAX_SWITCHES_PER_MIN="600", CHANNEL_WARM_STANDBY="false" if args.no_standby else "true",
                   ACERELAY_LOG_LEVEL=os.environ.get("ACERELAY_LOG_LEVEL", "warning"), HEALTH_CHECK_INTERVAL_S="1")
        cmd = [os.path.join(args.bin_dir, "acerelay"), "serve", "--listen", f"127.0.0.1:{stream_port}",
               "--api-listen", f"127.0.0.1:{api_port}", "--data-dir", data_dir, "--provision", "off", "--workers", "2"]
        for port in sims:
            cmd += ["--engine", f"http://127.0.0.1:{port}"]
        relay = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(OUT, "failover-relay.log"), "w"))
        procs.append(relay)
        wait_port(stream_port, relay)
        wait_port(api_port, relay)
        api = f"http://127.0.0.1:{api_port}"
        # A kill can cost two switches (the standby was on the engine that died), so keep sources to spare.
        sources = [f"{n:040x}" for n in range(0xFA000, 0xFA000 + 3 * args.switches)]
        channel = http(f"{api}/channels", "POST", {"name": "Failover bench", "sources": sources})["id"]
        time.sleep(1)
        reader = Reader(stream_port, f"/ace/channel/{channel}")
        reader.start()

        def status():
            return http(f"http://127.0.0.1:{stream_port}/ace/status")

        def playback():
            return next((c for c in status().get("channels") or [] if c["channel_id"] == channel), {})

        results = []
        for n in range(args.switches):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                time.sleep(0.2)
                with reader.lock:
                    steady = reader.last_real is not None and time.monotonic() - reader.last_real < 0.5
                    since_mark = time.monotonic() - reader.marks[-1][0] if reader.marks else 1e9
                state = status()
                info = next((c for c in state.get("channels") or [] if c["channel_id"] == channel), {})
                hubs = {h["content_id"]: h for h in state["hubs"]}
                standby = info.get("standby_source")
                standby_ready = args.no_standby or (standby in hubs and hubs[standby]["bytes_in"] > 0)
                playing = info.get("playing_source")
                if steady and since_mark >= args.settle and standby_ready and playing in hubs and hubs[playing].get("engine"):
                    break
            else:
                raise RuntimeError(f"switch {n}: the channel did not settle (status {info})")
            engine = hubs[playing]["engine"]
            marks_before = len(reader.marks)
            killed_at = time.monotonic()
            # The engine revives itself after 2 s (nothing could reach it to clear the fault).
            urllib.request.urlopen(f"{engine}/sim/fault?kind=die&seconds=2", timeout=5).read()
            deadline = killed_at + 30
            while len(reader.marks) == marks_before and time.monotonic() < deadline and not reader.closed:
                time.sleep(0.01)
            if len(reader.marks) == marks_before:
                raise RuntimeError(f"switch {n}: no marked PCR reached the player within 30 s; status {json.dumps(status())}")
            marked_at, gap = reader.marks[marks_before]
            results.append({"gap_s": gap, "kill_to_mark_s": marked_at - killed_at, "from": playing,
                            "standby": standby, "to": playback().get("playing_source")})
            print(f"switch {n + 1:2}: gap {gap:.3f} s, kill -> marked PCR {marked_at - killed_at:.3f} s", flush=True)
        gaps = [r["gap_s"] for r in results]
        marks = [r["kill_to_mark_s"] for r in results]
        summary = {
            "switches": len(results), "warm_standby": not args.no_standby, "engines": args.engines,
            "gap_p50_s": percentile(gaps, 50), "gap_p95_s": percentile(gaps, 95), "gap_max_s": max(gaps),
            "kill_to_mark_p50_s": percentile(marks, 50), "kill_to_mark_p95_s": percentile(marks, 95),
            "standby_used": sum(1 for r in results if r["to"] == r["standby"]),
            "relay_switches": playback().get("switches"),
            "misaligned_packets": reader.misaligned, "player_closed": reader.closed,
            "mean_gap_s": statistics.mean(gaps), "results": results,
        }
        print(json.dumps({k: v for k, v in summary.items() if k != "results"}, indent=1))
        with open(os.path.join(OUT, "failover.json"), "w") as f:
            json.dump(summary, f, indent=1)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
