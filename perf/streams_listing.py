#!/usr/bin/env python3
"""What one `GET /streams` poll costs in memory, for two builds side by side.

The listing holds every stream of the stats retention (an hour by default),
ended ones included, so on a busy relay it is thousands of rows. This starts
each build's `acerelay serve` on 127.0.0.1 (no engine needed), writes --rows
ended streams, each with a stat sample, into its database with the sqlite3
tool, then polls `/streams` --polls times from --clients threads at once while
sampling the process's anonymous RSS every 20 ms. It prints, per build: the
answer's size, the time per poll, anonymous RSS before, at its peak and after
malloc_trim's next round (acerelay trims every 30 s), and malloc's bytes in use
(acerelay's own gauge) before and after.

    python3 perf/streams_listing.py --baseline OLD/.build/release --candidate .build/release
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from harness import free_port, stop, wait_port


def rss_anon_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def get(url, timeout=60):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def heap_in_use_mb(api_port):
    text = get(f"http://127.0.0.1:{api_port}/metrics").decode()
    match = re.search(r"^acerelay_process_heap_in_use_bytes ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) / 1e6 if match else float("nan")


def fill(database, rows):
    """`rows` ended streams within the last 50 minutes (inside the retention), each with one sample."""
    sample = json.dumps({"at": "2026-01-01T00:00:00Z", "peers": 12, "speedDown": 512, "speedUp": 40,
                         "downloaded": 123456789, "uploaded": 2345678, "status": "dl",
                         "livepos": {"pos": 1767225600, "liveFirst": 1767222000, "liveLast": 1767225600,
                                     "firstTS": 1767222000, "lastTS": 1767225600, "bufferPieces": 15}})
    sql = f"""
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
    INSERT INTO streams(id, key_type, key, container_id, container_name, playback_session_id, stat_url, command_url,
                        is_live, started_at, ended_at, status, end_reason, origin)
    SELECT printf('%040x|%032x', i, i), 'content_id', printf('%040x', i), 'http://127.0.0.1:6878', 'engine-1',
           printf('%032x', i), printf('http://127.0.0.1:6878/ace/stat/%040x/%032x', i, i),
           printf('http://127.0.0.1:6878/ace/cmd/%040x/%032x', i, i), 1,
           strftime('%Y-%m-%d %H:%M:%f', 'now', printf('-%d seconds', 3000 - i % 2900)),
           strftime('%Y-%m-%d %H:%M:%f', 'now', printf('-%d seconds', 2900 - i % 2900)),
           'ended', 'player left', 'relay' FROM n;
    INSERT INTO stat_samples(stream_id, at, sample)
    SELECT id, started_at, '{sample}' FROM streams;
    """
    subprocess.run(["sqlite3", "-cmd", ".timeout 5000", database], input=sql.encode(), check=True)


def measure(name, bins, rows, polls, clients):
    data = tempfile.mkdtemp(prefix="acerelay-listing-")
    stream_port, api_port, engine_port = free_port(), free_port(), free_port()
    relay = subprocess.Popen([os.path.join(bins, "acerelay"), "serve", "--listen", f"127.0.0.1:{stream_port}",
                              "--api-listen", f"127.0.0.1:{api_port}", "--engine", f"http://127.0.0.1:{engine_port}",
                              "--provision", "off", "--data-dir", data],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(api_port, relay, name=name)
        fill(os.path.join(data, "acerelay.sqlite"), rows)
        size = len(get(f"http://127.0.0.1:{api_port}/streams"))
        time.sleep(31)  # one malloc_trim round, so "before" starts from a trimmed heap
        before, heap_before = rss_anon_kib(relay.pid), heap_in_use_mb(api_port)
        peak = [before]
        done = threading.Event()

        def sampler():
            while not done.is_set():
                peak[0] = max(peak[0], rss_anon_kib(relay.pid))
                time.sleep(0.02)

        def poller(count):
            for _ in range(count):
                body = get(f"http://127.0.0.1:{api_port}/streams")
                assert len(json.loads(body)) == rows, "a poll did not list every stream"

        threading.Thread(target=sampler, daemon=True).start()
        started = time.monotonic()
        threads = [threading.Thread(target=poller, args=(polls // clients,)) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        done.set()
        after_polls = rss_anon_kib(relay.pid)
        time.sleep(31)
        after_trim, heap_after = rss_anon_kib(relay.pid), heap_in_use_mb(api_port)
        return {"build": name, "json_mb": size / 1e6, "ms_per_poll": elapsed * 1000 / (polls // clients * clients),
                "anon_before_mb": before / 1024, "anon_peak_mb": peak[0] / 1024, "anon_after_polls_mb": after_polls / 1024,
                "anon_after_trim_mb": after_trim / 1024, "heap_before_mb": heap_before, "heap_after_mb": heap_after}
    finally:
        stop(relay, grace_s=10)
        shutil.rmtree(data, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", required=True, help="directory with the baseline build's acerelay")
    parser.add_argument("--candidate", required=True, help="directory with the build under test")
    parser.add_argument("--rows", type=int, default=3000, help="ended streams in the store (about an hour of the soak)")
    parser.add_argument("--polls", type=int, default=40)
    parser.add_argument("--clients", type=int, default=4, help="pollers at once")
    args = parser.parse_args()
    if not shutil.which("sqlite3"):
        sys.exit("needs the sqlite3 tool (apt-get install sqlite3)")
    results = [measure("baseline", args.baseline, args.rows, args.polls, args.clients),
               measure("candidate", args.candidate, args.rows, args.polls, args.clients)]
    keys = list(results[0].keys())[1:]
    print(f"{args.rows} ended streams, {args.polls} polls of /streams from {args.clients} clients at once")
    print("| measure | baseline | candidate |")
    print("|---|---|---|")
    for key in keys:
        print(f"| {key} | {results[0][key]:.2f} | {results[1][key]:.2f} |")


if __name__ == "__main__":
    main()
