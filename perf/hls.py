#!/usr/bin/env python3
"""HLS against TS: what acerelay costs serving N HLS players of one stream, next
to N TS players of the same stream.

    python3 perf/hls.py                 # 200 + 200 players, 30 s each (about 2 min)
    python3 perf/hls.py -n 50 -d 10     # smaller

One acerelay (release build, 1 worker, core 0) in front of the engine simulator
playing perf/out/media-8m.ts; the players run on core 1: perf/loadgen for TS
(8 Mbit/s each), perf/hlsload.py for HLS (each fetches every segment once, as
a player does). Each run has its own content id, so each is one engine session.
Reports the server's process CPU and the whole machine's busy CPU over each
load generator's measured window. Reuses perf/run.py's processes and sampling.
"""

import argparse
import json
import os
import secrets
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (perf/run.py: processes, sampling, simulator, media)


def hls_run(url, players, duration, warmup, cpus, sampled):
    cmd = run.pinned(cpus, [sys.executable, os.path.join(run.PERF, "hlsload.py"), "--url", url,
                            "-n", str(players), "-d", str(duration), "-w", str(warmup)])
    sampler = run.WindowSampler(sampled)
    lines = []
    p = run.PROCS.start("hlsload", cmd, duration + 90, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t = threading.Thread(target=sampler.follow, args=(p.stderr, lines), daemon=True)
    t.start()
    out = p.stdout.read()
    p.wait(timeout=duration + 95)
    t.join(timeout=5)
    run.PROCS.stop(p)
    if p.returncode != 0 or not out.strip():
        raise RuntimeError(f"hlsload failed with status {p.returncode}: " + " | ".join(lines[-5:]))
    return json.loads(out), sampler.result()


def row(kind, players, lg, sample, relay_status):
    busy = round(sum(c["busy"] for c in sample["cores"].values()), 1) if sample else None
    return {"kind": kind, "players": players, "server_cpu_pct": sample["cpu_pct"].get("server") if sample else None,
            "engine_sim_cpu_pct": sample["cpu_pct"].get("engine_sim") if sample else None,
            "total_busy_pct": busy, "loadgen_cpu_pct": lg["loadgen"]["cpu_pct"],
            "rss_mb": (sample or {}).get("mem", {}).get("server", {}).get("VmRSS"),
            "window_s": (sample or {}).get("window_s"), "loadgen": lg, "relay": relay_status}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("-d", type=int, default=30)
    ap.add_argument("-w", type=int, default=8)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--bin-dir", help="acerelay and acestream-engine-sim from here (e.g. .build/debug, to try the harness)")
    ap.add_argument("--wait-idle", type=float, default=60)
    args = ap.parse_args()
    os.makedirs(run.OUT, exist_ok=True)
    subprocess.run(["make", "-s", "-C", run.PERF], check=True)
    bin_dir = args.bin_dir or run.swift_bin_dir(not args.no_build)
    run.make_media()
    srv_cpus, lg_cpus = ("0", "1") if run.NCPU >= 2 else (None, None)
    bound = 3 * (args.d + args.w) + 200
    rows = []
    try:
        sim = run.Simulator(bin_dir, bound)
        srv = run.AcerelayServer(bin_dir, sim, 1, srv_cpus, bound, [])
        try:
            for kind in ("ts", "hls"):
                busy_before = run.wait_for_idle(args.wait_idle)
                content = secrets.token_hex(20)
                sampled = dict(srv.pids(), engine_sim=sim.pid)
                if kind == "ts":
                    url = f"http://127.0.0.1:{srv.port}/ace/getstream?id={content}"
                    lg, sample = run.run_loadgen(url, args.n, args.d, args.w, lg_cpus, ["-b", "8M", "-R", "200"], sampled, "ts")
                else:
                    url = f"http://127.0.0.1:{srv.port}/ace/manifest.m3u8?id={content}"
                    lg, sample = hls_run(url, args.n, args.d, args.w, lg_cpus, sampled)
                status = run.http_json(f"http://127.0.0.1:{srv.port}/ace/status")
                hub = next((h for h in status["hubs"] if h["content_id"] == content), {})
                r = row(kind, args.n, lg, sample, {k: hub.get(k) for k in ("players", "hls_players", "hls_segment_requests",
                                                                          "hls_playlist_requests", "bytes_out")})
                r["busy_before_pct"] = busy_before
                rows.append(r)
                run.log(f"{kind}: server {r['server_cpu_pct']}% of a core, machine {r['total_busy_pct']}% busy, "
                        f"loadgen {r['loadgen_cpu_pct']}%")
        finally:
            srv.stop()
    finally:
        run.PROCS.stop_all()
    with open(os.path.join(run.OUT, "hls-results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print(f"{'kind':5} {'players':>7} {'server CPU%':>11} {'machine busy%':>13} {'loadgen CPU%':>12} {'engine-sim%':>11} {'RSS MB':>7}")
    for r in rows:
        print(f"{r['kind']:5} {r['players']:>7} {run.fmt(r['server_cpu_pct']):>11} {run.fmt(r['total_busy_pct']):>13} "
              f"{run.fmt(r['loadgen_cpu_pct']):>12} {run.fmt(r['engine_sim_cpu_pct']):>11} {run.fmt(r['rss_mb']):>7}")
    for r in rows:
        lg = r["loadgen"]
        if r["kind"] == "hls":
            print(f"hls: {lg['segments']} segments, {lg['playlists']} playlists, {lg['segment_404s']} 404s, "
                  f"{lg['bad_segments']} bad segments, {lg['errors']} errors, rate min/p50 {lg['rate_bps']['min']}/{lg['rate_bps']['p50']} bit/s")
        else:
            print(f"ts: below 95% rate {lg.get('below_95pct')}, CC errors {lg.get('cc_errors')}, desyncs {lg.get('desyncs')}")


if __name__ == "__main__":
    main()
