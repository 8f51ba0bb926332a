#!/usr/bin/env python3
"""HLS players for the benchmark: N players of one live playlist, each as a real
HLS client behaves (RFC 8216 §6.3): reload the playlist about every target
duration (half of it when nothing changed), fetch each new segment once, on a
new connection, and read it to its Content-Length.

    python3 perf/hlsload.py --url http://127.0.0.1:8080/ace/manifest.m3u8?id=... -n 200 -d 30 -w 5

Prints `loadgen: window-start` / `loadgen: window-end` on stderr around the
measured window (as perf/loadgen does, so perf/run.py's sampler can follow it)
and a JSON summary on stdout. Every player has its own User-Agent, so the relay
counts it as a player of its own. Each segment is checked for a 0x47 sync byte
every 188 bytes and a PAT first. 127.0.0.1 only; bounded by --duration.
"""

import argparse
import asyncio
import json
import resource
import sys
import time
import urllib.parse


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Stats:
    def __init__(self):
        self.segments = 0
        self.bytes = 0
        self.playlists = 0
        self.not_found = 0
        self.errors = []
        self.bad_segments = 0
        self.per_player_bytes = {}
        self.window = False


async def fetch(host, port, path, ua):
    """One GET on a new connection. A playlist returns (status, body, length); a
    segment (status, whether its packets looked right, bytes read): its body is
    checked as it streams past, never kept."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: {ua}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
        length = int(headers.get("content-length", "0"))
        if path.endswith(".ts") and status == 200:
            got, ok, first = 0, True, True
            while got < length:
                chunk = await reader.read(min(262144, length - got))
                if not chunk:
                    break
                if first:
                    # PAT first: PID 0 with payload_unit_start.
                    ok = len(chunk) >= 3 and chunk[0] == 0x47 and chunk[1] & 0x5F == 0x40 and chunk[2] == 0
                    first = False
                # The sync byte of every packet that starts inside this chunk.
                start = (-got) % 188
                if chunk[start::188].count(0x47) != len(range(start, len(chunk), 188)):
                    ok = False
                got += len(chunk)
            return status, ok and got == length and length % 188 == 0, got
        body = await reader.readexactly(length) if length else b""
        return status, body, length
    finally:
        writer.close()


def parse_playlist(text):
    target, seq, uris = 2, 0, []
    for line in text.splitlines():
        if line.startswith("#EXT-X-TARGETDURATION:"):
            target = int(line.split(":")[1])
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            seq = int(line.split(":")[1])
        elif line and not line.startswith("#"):
            uris.append(line)
    return target, [(seq + i, u) for i, u in enumerate(uris)]


async def player(i, args, host, port, path, stats, stop_at):
    ua = f"hlsload/{i}"
    last = None
    while time.monotonic() < stop_at:
        started = time.monotonic()
        try:
            status, body, _ = await fetch(host, port, path, ua)
        except Exception as e:
            stats.errors.append(f"playlist: {e!r}")
            await asyncio.sleep(1)
            continue
        if stats.window:
            stats.playlists += 1
        if status != 200:
            await asyncio.sleep(1)
            continue
        target, segments = parse_playlist(body.decode())
        # Players start three segments from the live edge.
        fresh = [s for s in segments if last is None or s[0] > last]
        if last is None:
            fresh = fresh[-3:]
        for seq, uri in fresh:
            try:
                status, ok, got = await fetch(host, port, uri, ua)
            except Exception as e:
                stats.errors.append(f"segment: {e!r}")
                continue
            last = seq
            if status == 404:
                stats.not_found += stats.window
                continue
            if stats.window:
                stats.segments += 1
                stats.bytes += got
                stats.per_player_bytes[i] = stats.per_player_bytes.get(i, 0) + got
                stats.bad_segments += 0 if ok else 1
        wait = target if fresh else target / 2
        await asyncio.sleep(max(0.0, wait - (time.monotonic() - started)))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("-d", type=float, default=20, help="measured seconds")
    ap.add_argument("-w", type=float, default=5, help="warm-up seconds after the last player started")
    ap.add_argument("-R", type=float, default=200, help="players started per second")
    args = ap.parse_args()
    u = urllib.parse.urlsplit(args.url)
    if u.hostname not in ("127.0.0.1", "localhost"):
        sys.exit("hlsload: 127.0.0.1 only")
    path = u.path + ("?" + u.query if u.query else "")
    stats = Stats()
    ramp = args.n / args.R
    stop_at = time.monotonic() + ramp + args.w + args.d
    tasks = []
    for i in range(args.n):
        tasks.append(asyncio.create_task(player(i, args, u.hostname, u.port or 80, path, stats, stop_at)))
        await asyncio.sleep(1 / args.R)
    await asyncio.sleep(args.w)
    ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    stats.window = True
    log("loadgen: window-start")
    await asyncio.sleep(args.d)
    stats.window = False
    log("loadgen: window-end")
    ru1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    span = t1 - t0
    cpu = 100 * ((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)) / span
    rates = sorted(8 * stats.per_player_bytes.get(i, 0) / span for i in range(args.n))
    print(json.dumps({
        "players": args.n, "window_s": round(span, 2), "segments": stats.segments, "playlists": stats.playlists,
        "segment_404s": stats.not_found, "bad_segments": stats.bad_segments, "errors": len(stats.errors),
        "first_errors": stats.errors[:5], "bytes": stats.bytes,
        "rate_bps": {"min": round(rates[0]), "p50": round(rates[len(rates) // 2]), "max": round(rates[-1])},
        "loadgen": {"cpu_pct": round(cpu, 1), "saturated": cpu > 90, "tick_lag_mean_ms": None},
    }))


if __name__ == "__main__":
    asyncio.run(main())
