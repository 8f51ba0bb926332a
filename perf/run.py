#!/usr/bin/env python3
"""acerelay benchmark runner: acerelay against a minimal sendfile fan-out.

Builds the C tools (perf/loadgen, perf/baseline), makes an 8 Mbit/s H.264/AAC
test stream once, starts the AceStream engine simulator, then for every
scenario runs the baseline and acerelay in turn with perf/loadgen as the
players. Prints a table, writes perf/out/results.json and perf/out/results.png.

    python3 perf/run.py            # full run (a few minutes)
    python3 perf/run.py --quick    # smoke run: ~100 players, 10 s per scenario

Everything runs on 127.0.0.1; every process it starts is bounded in time
and stopped on exit, Ctrl-C or error. See perf/README.md for how to read the output.
"""

import argparse
import atexit
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import sys
import threading
import time
import urllib.parse
import urllib.request

from harness import free_port, wait_port

PERF = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(PERF)
OUT = os.path.join(PERF, "out")
LOADGEN = os.path.join(OUT, "loadgen")
BASELINE = os.path.join(OUT, "baseline")
MEDIA = os.path.join(OUT, "media-8m.ts")
CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1

# Video bitrate that fits an 8 Mbit/s mux with audio and TS overhead; the mux
# pads the rest with null packets so the stream is exactly 8 Mbit/s by PCR.
MEDIA_CMD = [
    "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
    "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
    "-t", "20", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
    "-b:v", "7.4M", "-minrate", "7.4M", "-maxrate", "7.4M", "-bufsize", "2M",
    "-x264-params", "nal-hrd=cbr", "-g", "50", "-pix_fmt", "yuv420p",
    "-c:a", "aac", "-b:a", "128k", "-muxrate", "8M", "-f", "mpegts",
]


def log(msg):
    print(f"[run] {msg}", file=sys.stderr, flush=True)


# ---- processes --------------------------------------------------------------

class Processes:
    """Every process the runner starts, so each one is stopped by its own id on any exit."""

    def __init__(self):
        self.procs = []

    def start(self, name, cmd, bound_s, **kw):
        # `timeout` bounds each process even if this runner is killed outright.
        full = ["timeout", "--kill-after=5", str(int(bound_s))] + cmd
        p = subprocess.Popen(full, start_new_session=True, **kw)
        p.name = name
        self.procs.append(p)
        return p

    def stop(self, p, grace=3.0):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                # Our own session: its group holds `timeout` and the program it runs.
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)
            except ProcessLookupError:
                pass
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in reversed(list(self.procs)):
            try:
                self.stop(p)
            except Exception as e:  # keep stopping the others
                log(f"could not stop {p.name} (pid {p.pid}): {e}")


PROCS = Processes()


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def real_pid(p):
    """The pid of the program behind `timeout` (and behind `taskset`, which execs)."""
    path = f"/proc/{p.pid}/task/{p.pid}/children"
    for _ in range(50):
        try:
            kids = open(path).read().split()
            if kids:
                return int(kids[0])
        except OSError:
            return None
        time.sleep(0.02)
    return None


def pinned(cpus, cmd):
    return ["taskset", "-c", cpus] + cmd if cpus else cmd


# ---- /proc sampling ---------------------------------------------------------

def proc_cpu_s(pid):
    """utime + stime of a process (all threads), seconds."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_mem_mb(pid):
    out = {}
    try:
        for line in open(f"/proc/{pid}/status"):
            key, _, val = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(val.split()[0]) / 1024
    except OSError:
        pass
    return out


def memfd_mb(pid):
    """Memory held by the process's memfds (not in RSS: they are never mapped)."""
    total = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            path = f"/proc/{pid}/fd/{fd}"
            try:
                if os.readlink(path).startswith("/memfd:"):
                    total += os.stat(path).st_blocks * 512
            except OSError:
                continue
    except OSError:
        return None
    return total / 2**20


def all_process_cpu():
    """{pid: (name, cpu seconds)} for every process, to name whoever else used the machine."""
    res = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            res[int(d)] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return res


def tcp_counters():
    """Kernel TCP counters that say the socket memory ran short or packets were lost."""
    want = {"TCPMemoryPressures", "PruneCalled", "RcvPruned", "OfoPruned", "TCPOFODrop", "TCPRcvQDrop"}
    res = {}
    for path, prefix in (("/proc/net/netstat", "TcpExt:"), ("/proc/net/snmp", "Tcp:")):
        try:
            lines = [l.split() for l in open(path) if l.startswith(prefix)]
        except OSError:
            continue
        for names, vals in zip(lines[0::2], lines[1::2]):
            for n, v in zip(names[1:], vals[1:]):
                if n in want or n == "RetransSegs":
                    res[n] = int(v)
    return res


def tcp_mem_pages():
    """(pages TCP sockets hold now, the kernel's pressure threshold in pages)."""
    used = None
    for line in open("/proc/net/sockstat"):
        if line.startswith("TCP:"):
            f = line.split()
            used = int(f[f.index("mem") + 1])
    pressure = int(open("/proc/sys/net/ipv4/tcp_mem").read().split()[1])
    return used, pressure


def core_times():
    cores = {}
    for line in open("/proc/stat"):
        if line.startswith("cpu") and line[3].isdigit():
            name, *vals = line.split()
            v = list(map(int, vals[:8]))
            cores[name] = {"user": v[0] + v[1], "system": v[2], "idle": v[3] + v[4],
                           "irq": v[5], "softirq": v[6], "steal": v[7]}
    return cores


def core_busy(before, after):
    """Per-core % over a window, split so loopback softirq time shows up."""
    res = {}
    for name in after:
        d = {k: after[name][k] - before[name][k] for k in after[name]}
        total = sum(d.values()) or 1
        res[name] = {k: round(100 * d[k] / total, 1) for k in ("user", "system", "softirq")}
        res[name]["busy"] = round(100 * (total - d["idle"]) / total, 1)
    return res


class WindowSampler:
    """Samples the server over the loadgen's own measurement window (its stderr markers)."""

    def __init__(self, pids):
        self.pids = {k: v for k, v in pids.items() if v}
        self.start = self.end = None
        self.done = threading.Event()
        self.tcp_mem_peak = 0
        threading.Thread(target=self.watch_tcp_mem, daemon=True).start()

    def watch_tcp_mem(self):
        while not self.done.wait(1.0):
            used, _ = tcp_mem_pages()
            self.tcp_mem_peak = max(self.tcp_mem_peak, used or 0)

    def sample(self):
        return {"t": time.monotonic(), "cores": core_times(), "procs": all_process_cpu(), "tcp": tcp_counters(),
                "cpu": {k: proc_cpu_s(p) for k, p in self.pids.items()}}

    def follow(self, stream, sink):
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            sink.append(line)
            if line == "loadgen: window-start":
                self.start = self.sample()
            elif line == "loadgen: window-end":
                self.end = self.sample()
                self.mem = {k: dict(proc_mem_mb(p), memfd_MB=memfd_mb(p)) for k, p in self.pids.items()}
        self.done.set()

    def result(self):
        if not (self.start and self.end):
            return None
        span = self.end["t"] - self.start["t"]
        cpu = {}
        for k in self.pids:
            a, b = self.start["cpu"].get(k), self.end["cpu"].get(k)
            cpu[k] = round(100 * (b - a) / span, 1) if a is not None and b is not None else None
        others = {}
        before = self.start["procs"]
        for pid, (name, t) in self.end["procs"].items():
            if pid not in self.pids.values():
                # A process born inside the window spent all its CPU time in it.
                pct = 100 * (t - (before[pid][1] if pid in before else 0)) / span
                if pct >= 2:
                    others[name] = round(others.get(name, 0) + pct, 1)
        tcp = {k: v - self.start["tcp"].get(k, 0) for k, v in self.end["tcp"].items()}
        _, pressure = tcp_mem_pages()
        tcp["mem_peak_MB"] = round(self.tcp_mem_peak * 4096 / 2**20)
        tcp["mem_pressure_MB"] = round(pressure * 4096 / 2**20)
        return {"window_s": round(span, 2), "cpu_pct": cpu, "mem": self.mem, "other_processes": others, "tcp": tcp,
                "cores": core_busy(self.start["cores"], self.end["cores"])}


def run_loadgen(url, players, duration, warmup, cpus, extra, sampled_pids, label):
    """Runs one loadgen to completion; returns (its JSON, the server sample over its window)."""
    cmd = pinned(cpus, [LOADGEN, "--url", url, "-n", str(players), "-d", str(duration), "-w", str(warmup)] + extra)
    sampler = WindowSampler(sampled_pids)
    lines = []
    p = PROCS.start(f"loadgen[{label}]", cmd, duration + 60, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t = threading.Thread(target=sampler.follow, args=(p.stderr, lines), daemon=True)
    t.start()
    out = p.stdout.read()
    p.wait(timeout=duration + 65)
    t.join(timeout=5)
    PROCS.stop(p)
    if p.returncode != 0 or not out.strip():
        raise RuntimeError(f"loadgen ({label}) failed with status {p.returncode}: " + " | ".join(lines[-5:]))
    return json.loads(out), sampler.result()


# ---- sources and servers ----------------------------------------------------

def http_json(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def rewrite_to(url, host_port):
    """Engines report their own idea of their host: keep the path, use the address we reached."""
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(("http", host_port, u.path, u.query, u.fragment))


class Simulator:
    def __init__(self, bin_dir, bound_s):
        self.port = free_port()
        exe = os.path.join(bin_dir, "acestream-engine-sim")
        self.proc = PROCS.start("engine-sim", [exe, "--http-port", str(self.port), "--media", MEDIA], bound_s,
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(OUT, "engine-sim.log"), "w"))
        wait_port(self.port, self.proc)
        self.pid = real_pid(self.proc)
        self.url = f"http://127.0.0.1:{self.port}"

    def open_session(self, content_id):
        """Returns (playback_url, command_url) for a fresh playback session."""
        d = http_json(f"{self.url}/ace/getstream?format=json&id={content_id}&pid=perf-{secrets.token_hex(4)}")
        if d.get("error") or not (d.get("response") or {}).get("playback_url"):
            raise RuntimeError(f"engine simulator refused the session: {d.get('error')!r}")
        host = f"127.0.0.1:{self.port}"
        r = d["response"]
        return rewrite_to(r["playback_url"], host), (rewrite_to(r["command_url"], host) if r.get("command_url") else None)


class BaselineServer:
    """The baseline fan-out fed by curl from the simulator, or by ffmpeg pacing the media file."""

    name = "baseline"

    def __init__(self, source, sim, cpus, bound_s):
        self.port = free_port()
        self.command_url = None
        if source == "sim":
            playback, self.command_url = sim.open_session(secrets.token_hex(20))
            feed = ["curl", "-sN", "--max-time", str(int(bound_s)), playback]
        else:
            feed = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", MEDIA,
                    "-t", str(int(bound_s)), "-c", "copy", "-muxrate", "8M", "-f", "mpegts", "-"]
        self.feeder = PROCS.start("feeder", pinned(cpus, feed), bound_s, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
        self.log = open(os.path.join(OUT, "baseline.log"), "a")
        self.proc = PROCS.start("baseline", pinned(cpus, [BASELINE, "-p", str(self.port)]), bound_s,
                                stdin=self.feeder.stdout, stdout=subprocess.DEVNULL, stderr=self.log)
        self.feeder.stdout.close()  # the baseline owns the pipe now
        wait_port(self.port, self.proc)
        self.pid = real_pid(self.proc)
        self.feeder_pid = real_pid(self.feeder)
        self.path = "/ace/getstream?id=" + "0" * 40
        # Let the history fill and the input rate estimate (3 s) settle before players join.
        time.sleep(4)

    def pids(self):
        return {"server": self.pid, "feeder": self.feeder_pid}

    def stop(self):
        PROCS.stop(self.proc)
        PROCS.stop(self.feeder)
        self.log.close()
        if self.command_url:
            try:
                http_json(self.command_url + ("&" if "?" in self.command_url else "?") + "method=stop", timeout=3)
            except Exception:
                pass


class AcerelayServer:
    name = "acerelay"

    def __init__(self, bin_dir, sim, workers, cpus, bound_s, extra_args):
        self.port = free_port()
        self.log = open(os.path.join(OUT, "acerelay.log"), "a")
        # The control plane runs too (it shares the process, at lower priority), on
        # loopback and with a throwaway store, so runs leave nothing behind.
        self.data_dir = tempfile.mkdtemp(prefix="acerelay-perf-")
        cmd = [os.path.join(bin_dir, "acerelay"), "serve", "--listen", f"127.0.0.1:{self.port}",
               "--engine", sim.url, "--workers", str(workers),
               "--api-listen", "127.0.0.1:0", "--data-dir", self.data_dir, "--provision", "off"] + extra_args
        self.proc = PROCS.start("acerelay", pinned(cpus, cmd), bound_s, stdout=self.log, stderr=self.log)
        wait_port(self.port, self.proc)
        self.pid = real_pid(self.proc)
        # A fresh content per run: the engine serves one content to one session only.
        self.path = "/ace/getstream?id=" + secrets.token_hex(20)

    def pids(self):
        return {"server": self.pid}

    def stop(self):
        PROCS.stop(self.proc)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.log.close()


# ---- scenarios ----------------------------------------------------------------

SCENARIOS = {
    "a": dict(title="1,000 players, acerelay 1 worker", players=1000, workers=1, duration=30, slow=0.0, tick=20),
    # Players read every 100 ms here: at 20 ms the loadgen alone fills a core of this 2-core machine.
    "b": dict(title="2,500 players, acerelay 2 workers", players=2500, workers=2, duration=30, slow=0.0, tick=100),
    "c": dict(title="TTFB: 100 joiners on a live hub", players=100, workers=1, duration=10, slow=0.0, tick=20,
              keepers=5),
    # Long enough for slow players to drain their socket buffers and reach a skip.
    "d": dict(title="1,000 players, 5% slow (1/10 rate)", players=1000, workers=1, duration=60, slow=0.05,
              tick=20),
}
QUICK = {"a": dict(players=100, duration=10), "b": dict(players=100, duration=10),
         "c": dict(players=50, duration=8), "d": dict(players=100, duration=12)}


def scenario_cores(args, server, sc):
    """Server on core 0, loadgen on core 1; a 2-worker acerelay gets both cores and shares one."""
    if NCPU < 2:
        return None, None, "one core: server and loadgen share it"
    srv, lg = "0", "1"
    if server == "acerelay" and sc["workers"] > 1:
        srv = "0,1"
    srv = args.server_cpus or srv
    lg = args.loadgen_cpus or lg
    shared = set(srv.split(",")) & set(lg.split(","))
    if shared:
        return srv, lg, f"cores shared: {server} on {srv}, loadgen on {lg}"
    if server == "acerelay" and sc["workers"] > len(srv.split(",")):
        return srv, lg, f"acerelay's {sc['workers']} workers share core(s) {srv}"
    return srv, lg, None


def machine_busy(span=1.0):
    """% of all cores busy over a short span (100 = one core's worth)."""
    a = core_times()
    time.sleep(span)
    return sum(c["busy"] for c in core_busy(a, core_times()).values())


def wait_for_idle(limit_s):
    """Other work on the box (a compiler, say) skews every number: wait a while for it to finish."""
    deadline = time.time() + limit_s
    busy = machine_busy()
    while busy > 15 and time.time() < deadline:
        log(f"machine is {busy:.0f}% busy before the run; waiting for it to go idle")
        time.sleep(4)
        busy = machine_busy()
    return round(busy, 1)


def run_one(args, key, sc, server_name, sim, bin_dir):
    srv_cpus, lg_cpus, note = scenario_cores(args, server_name, sc)
    notes = [note] if note else []
    busy_before = wait_for_idle(args.wait_idle)
    if busy_before > 15:
        notes.append(f"NOISY: the machine was {busy_before}% busy just before this run")
    bound = sc["duration"] + 120
    if server_name == "baseline":
        srv = BaselineServer(args.source, sim, srv_cpus, bound)
    else:
        srv = AcerelayServer(bin_dir, sim, sc["workers"], srv_cpus, bound, args.acerelay_arg)
    url = f"http://127.0.0.1:{srv.port}{srv.path}"
    # Joiners on a live hub arrive at a realistic pace rather than all at once.
    ramp = 50 if sc.get("keepers") else args.ramp
    tick = args.tick_ms or sc["tick"]
    lg_extra = ["-b", str(args.rate), "-R", str(ramp), "-t", str(args.loadgen_threads), "--tick-ms", str(tick)]
    if tick != 20:
        notes.append(f"players read every {tick} ms (fewer, larger reads)")
    keepers = None
    try:
        if sc.get("keepers"):
            # Players already on the hub, so the measured joiners find it live.
            kdur = sc["duration"] + 12
            kcmd = pinned(lg_cpus, [LOADGEN, "--url", url, "-n", str(sc["keepers"]), "-d", str(kdur), "-w", "1",
                                    "--no-rates", "-b", str(args.rate)])
            keepers = PROCS.start("loadgen[keepers]", kcmd, kdur + 30, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
            time.sleep(6)
        log(f"{key}/{server_name}: {sc['players']} players for {sc['duration']} s -> {url}")
        extra = lg_extra + (["--slow-fraction", str(sc["slow"]), "--slow-rate-div", "10"] if sc["slow"] else [])
        extra += args.loadgen_arg
        warmup = 1 if sc.get("keepers") else args.warmup
        sampled = dict(srv.pids(), engine_sim=sim.pid if sim else None)
        lg, sample = run_loadgen(url, sc["players"], sc["duration"], warmup, lg_cpus, extra, sampled,
                                 f"{key}/{server_name}")
        if keepers is not None:
            kout = keepers.stdout.read()
            keepers.wait(timeout=30)
            PROCS.stop(keepers)
            kj = json.loads(kout) if kout.strip() else {}
            notes.append(f"{sc['keepers']} keeper players: CC errors {kj.get('cc_errors')}, "
                         f"desyncs {kj.get('desyncs')}, below 95% {kj.get('below_95pct')}")
    finally:
        if keepers is not None:
            PROCS.stop(keepers)
        srv.stop()

    if lg["loadgen"]["saturated"]:
        notes.append(f"LOADGEN-BOUND: loadgen at {lg['loadgen']['cpu_pct']}% CPU, tick lag "
                     f"{lg['loadgen']['tick_lag_mean_ms']} ms mean; rates below target may be the loadgen's")
    cpu = (sample or {}).get("cpu_pct", {})
    mem = (sample or {}).get("mem", {}).get("server", {})
    other = None
    if sample and None not in cpu.values():
        busy = sum(c["busy"] for c in sample["cores"].values())
        # Clamped: /proc/stat and per-process times tick separately, so an idle remainder can dip below 0.
        other = max(0.0, round(busy - sum(cpu.values()) - lg["loadgen"]["cpu_pct"], 1))
        # Loopback softirq work is charged to no process; beyond that, "other" is someone else.
        softirq = sum(c["softirq"] for c in sample["cores"].values())
        kernel = ("ksoftirqd", "kworker", "kdamond", "rcu_", "migration")
        foreign = {k: v for k, v in sample["other_processes"].items()
                   if k not in ("loadgen", "timeout") and not k.startswith(kernel)}
        if foreign:
            notes.append(f"other processes in the window (% of one core): {foreign}")
        if sum(foreign.values()) >= 10 or other - softirq > 30:
            notes.append(f"NOISY: {other}% of core time went to neither the server nor the loadgen "
                         f"({softirq:.0f}% was softirq); other work was running, rerun on an idle machine")
    tcp = (sample or {}).get("tcp") or {}
    if tcp.get("TCPMemoryPressures", 0):
        notes.append(f"TCP-MEM-PRESSURE: sockets held up to {tcp['mem_peak_MB']} MB against the kernel's "
                     f"{tcp['mem_pressure_MB']} MB pressure mark (net.ipv4.tcp_mem) and the kernel dropped "
                     f"{tcp.get('TCPOFODrop', 0)} packets"
                     + ("" if args.raise_tcp_mem else "; rerun with --raise-tcp-mem (as root)"))
    elif tcp.get("TCPOFODrop", 0) or tcp.get("RcvPruned", 0):
        notes.append(f"TCP drops: {tcp.get('TCPOFODrop', 0)} out-of-order drops, {tcp.get('RcvPruned', 0)} "
                     "receive prunes (full receive queues)")
    if cpu.get("server") is not None and cpu["server"] > 95 and not (srv_cpus and "," in srv_cpus):
        notes.append(f"SERVER-BOUND: {server_name} used {cpu['server']}% of its core")
    return {
        "scenario": key, "title": sc["title"], "server": server_name, "players": sc["players"],
        "workers": sc["workers"] if server_name == "acerelay" else 1,
        "slow_fraction": sc["slow"], "tick_ms": tick, "server_cpus": srv_cpus, "loadgen_cpus": lg_cpus,
        "cpu_pct": cpu.get("server"), "feeder_cpu_pct": cpu.get("feeder"), "engine_sim_cpu_pct": cpu.get("engine_sim"),
        "other_cpu_pct": other, "busy_before_pct": busy_before,
        "total_cpu_pct": round(sum(c["busy"] for c in sample["cores"].values()), 1) if sample else None,
        "rss_mb": mem.get("VmRSS"), "hwm_mb": mem.get("VmHWM"), "memfd_mb": mem.get("memfd_MB"),
        "other_processes": (sample or {}).get("other_processes"), "tcp": tcp,
        "cores": (sample or {}).get("cores"), "window_s": (sample or {}).get("window_s"),
        "notes": notes, "loadgen": lg,
    }


# ---- output -------------------------------------------------------------------

def fmt(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def print_table(rows):
    head = ["scen", "server", "players", "CPU%", "x base", "total%", "RSS MB", "memfd MB", "<95%", "TTFB p50/p99 ms",
            "CC norm/slow", "desync", "stalls", "failed", "LG CPU%", "other%"]
    lines = [head]
    for r in rows:
        lg = r["loadgen"]
        lines.append([
            r["scenario"], r["server"] + (f" x{r['workers']}" if r["server"] == "acerelay" else ""),
            str(r["players"]), fmt(r["cpu_pct"]), fmt(r.get("cpu_ratio"), 2), fmt(r.get("total_cpu_pct")),
            fmt(r["rss_mb"]), fmt(r["memfd_mb"]),
            str(lg["below_95pct"]), f"{fmt(lg['ttfb_ms']['p50'])}/{fmt(lg['ttfb_ms']['p99'])}",
            f"{lg['cc_errors']['normal']}/{lg['cc_errors']['slow']}", str(lg["desyncs"]), str(lg["stalls"]),
            str(lg["failed_connections"]), fmt(lg["loadgen"]["cpu_pct"]), fmt(r.get("other_cpu_pct")),
        ])
    widths = [max(len(l[i]) for l in lines) for i in range(len(head))]
    for n, l in enumerate(lines):
        print("  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(l, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for r in rows:
        for note in r["notes"]:
            print(f"  {r['scenario']}/{r['server']}: {note}")


def ensure_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        pass
    log("matplotlib is missing; installing it with pip")
    rc = subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"])
    if rc != 0:
        return False
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


def write_png(rows, path):
    if not ensure_matplotlib():
        log("no PNG: matplotlib is not installed and `pip install matplotlib` failed; results.json has the data")
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 5.5))
    keys = sorted({r["scenario"] for r in rows})
    servers = [s for s in ("baseline", "acerelay") if any(r["server"] == s for r in rows)]
    width = 0.8 / len(servers)
    for i, s in enumerate(servers):
        vals = []
        for k in keys:
            r = next((r for r in rows if r["scenario"] == k and r["server"] == s), None)
            vals.append(r["cpu_pct"] if r and r["cpu_pct"] is not None else 0)
        bars = ax1.bar([x + (i - (len(servers) - 1) / 2) * width for x in range(len(keys))], vals, width, label=s)
        ax1.bar_label(bars, fmt="%.0f", fontsize=8)
    labels = []
    for k in keys:
        r = next(r for r in rows if r["scenario"] == k)
        labels.append(f"{k}: {r['players']} pl." + (" 5% slow" if r["slow_fraction"] else "")
                      + (" (TTFB)" if k == "c" else ""))
    ax1.set_xticks(range(len(keys)), labels, fontsize=8)
    ax1.set_ylabel("server CPU, % of one core")
    ax1.set_title("Server CPU over the measurement window")
    ax1.legend()

    for r in rows:
        rates = sorted(r["loadgen"].get("rates_mbps") or [])
        if not rates:
            continue
        ys = [100 * (i + 1) / len(rates) for i in range(len(rates))]
        ax2.step(rates, ys, where="post", label=f"{r['scenario']}/{r['server']}",
                 linestyle="-" if r["server"] == "acerelay" else "--")
    target = rows[0]["loadgen"]["target_mbps"] if rows else 8
    if target:
        ax2.axvline(0.95 * target, color="grey", linewidth=0.8, linestyle=":")
        ax2.text(0.95 * target, 2, " 95% of target", fontsize=8, color="grey")
    ax2.set_xlabel("achieved rate per normal player, Mbit/s")
    ax2.set_ylabel("% of players at or below")
    ax2.set_title("Per-player rate distribution (CDF)")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


# ---- main -------------------------------------------------------------------------

TCP_MEM = "/proc/sys/net/ipv4/tcp_mem"


def raise_tcp_mem():
    """Lets sockets hold ~8 GB before the kernel starts pruning; puts the old value back at exit."""
    old = open(TCP_MEM).read().strip()
    pages = [int(v) for v in old.split()]
    total = os.sysconf("SC_PHYS_PAGES")
    new = [max(p, int(total * f)) for p, f in zip(pages, (0.25, 0.33, 0.4))]
    if new == pages:
        return None
    try:
        with open(TCP_MEM, "w") as f:
            f.write(" ".join(map(str, new)))
    except OSError as e:
        sys.exit(f"run.py: --raise-tcp-mem needs root to write {TCP_MEM}: {e}")

    def restore():
        with open(TCP_MEM, "w") as f:
            f.write(old)
        log(f"net.ipv4.tcp_mem restored to {old}")

    atexit.register(restore)
    log(f"net.ipv4.tcp_mem raised from {old} to {' '.join(map(str, new))} pages for this run")
    return old


def swift_bin_dir(build):
    if build:
        log("swift build -c release (this can take several minutes)")
        rc = subprocess.call(["swift", "build", "-c", "release"], cwd=ROOT)
        if rc != 0:
            log(f"swift build failed (status {rc}); continuing with whatever binaries exist")
    try:
        return subprocess.check_output(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT,
                                       text=True, stderr=subprocess.DEVNULL).strip()
    except (OSError, subprocess.CalledProcessError):
        return os.path.join(ROOT, ".build", "release")


def make_media():
    if os.path.exists(MEDIA) and os.path.getsize(MEDIA) > 0:
        return
    log(f"making the test media {MEDIA}")
    subprocess.check_call(MEDIA_CMD + [MEDIA + ".tmp"])
    os.replace(MEDIA + ".tmp", MEDIA)
    dur = float(subprocess.check_output(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                                         "csv=p=0", MEDIA], text=True).strip())
    mbps = os.path.getsize(MEDIA) * 8 / dur / 1e6
    log(f"media: {dur:.1f} s, {mbps:.2f} Mbit/s by size/duration")
    if not 7.6 <= mbps <= 8.4:
        log(f"warning: the media is {mbps:.2f} Mbit/s, not ~8; rates are compared with --rate anyway")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: ~100 players, ~10 s per scenario")
    ap.add_argument("--scenarios", default="a,b,c,d", help="which scenarios, comma-separated (default a,b,c,d)")
    ap.add_argument("--servers", default="baseline,acerelay", help="which servers (default baseline,acerelay)")
    ap.add_argument("--source", choices=["auto", "sim", "ffmpeg"], default="auto",
                    help="what feeds the baseline: the engine simulator, or ffmpeg pacing the media "
                         "(auto: the simulator if it is built). acerelay always needs the simulator.")
    ap.add_argument("--no-build", action="store_true", help="do not run `swift build -c release`")
    ap.add_argument("--bin-dir", help="where acerelay and acestream-engine-sim are (default: swift's release bin path)")
    ap.add_argument("--players", type=int, help="override the player count of every scenario")
    ap.add_argument("--duration", type=float, help="override every scenario's duration, seconds")
    ap.add_argument("--warmup", type=float, default=3, help="seconds after the ramp before measuring (default 3)")
    ap.add_argument("--rate", default="8M", help="per-player read rate, bits/s (default 8M)")
    ap.add_argument("--ramp", type=float, default=500, help="players joining per second (default 500)")
    ap.add_argument("--tick-ms", type=float, help="how often players read, ms (default 20; 100 in scenario b)")
    ap.add_argument("--server-cpus", help="taskset list for the server under test (default 0; 0,1 for "
                    "acerelay with 2 workers)")
    ap.add_argument("--loadgen-cpus", help="taskset list for the loadgen (default 1)")
    ap.add_argument("--loadgen-threads", type=int, default=1, help="loadgen worker threads (default 1)")
    ap.add_argument("--loadgen-arg", action="append", default=[], help="extra argument for every measured loadgen")
    ap.add_argument("--acerelay-arg", action="append", default=[], help="extra argument for `acerelay serve`")
    ap.add_argument("--wait-idle", type=float, default=60,
                    help="wait up to this many seconds for other load to stop before each run (default 60)")
    ap.add_argument("--raise-tcp-mem", action="store_true",
                    help="as root, raise net.ipv4.tcp_mem for the run (restored at exit): 2,500 players at "
                         "8 Mbit/s need ~2 GB of socket memory, above the default pressure mark")
    ap.add_argument("--no-png", action="store_true", help="skip the chart")
    return ap.parse_args()


def main():
    args = parse_args()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    atexit.register(PROCS.stop_all)
    os.makedirs(OUT, exist_ok=True)
    for tool in ("make", "gcc", "ffmpeg", "ffprobe", "curl", "taskset", "timeout"):
        if shutil.which(tool) is None:
            sys.exit(f"run.py: `{tool}` is not installed (apt-get install -y build-essential ffmpeg curl util-linux)")

    if args.raise_tcp_mem:
        raise_tcp_mem()
    subprocess.check_call(["make", "-s", "-C", PERF])
    make_media()

    bin_dir = args.bin_dir or swift_bin_dir(not args.no_build)
    have_sim = os.access(os.path.join(bin_dir, "acestream-engine-sim"), os.X_OK)
    have_relay = os.access(os.path.join(bin_dir, "acerelay"), os.X_OK)
    source = args.source
    if source == "auto":
        source = "sim" if have_sim else "ffmpeg"
    if source == "sim" and not have_sim:
        sys.exit(f"run.py: --source sim but {bin_dir}/acestream-engine-sim is not built")
    args.source = source
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    skipped = []
    if "acerelay" in servers and not (have_relay and have_sim):
        why = "acerelay is not built" if not have_relay else "the engine simulator is not built"
        skipped.append(f"acerelay scenarios skipped: {why} (looked in {bin_dir})")
        servers.remove("acerelay")
    for s in skipped:
        log(s)

    keys = [k.strip() for k in args.scenarios.split(",") if k.strip()]
    for k in keys:
        if k not in SCENARIOS:
            sys.exit(f"run.py: unknown scenario {k!r}; choose from {','.join(SCENARIOS)}")
    plan = {}
    for k in keys:
        sc = dict(SCENARIOS[k])
        if args.quick:
            sc.update(QUICK[k])
        if args.players:
            sc["players"] = args.players
        if args.duration:
            sc["duration"] = args.duration
        plan[k] = sc
    total_s = sum(sc["duration"] + 30 for sc in plan.values()) * max(1, len(servers)) + 300

    sim = Simulator(bin_dir, total_s) if source == "sim" else None
    rows = []
    try:
        for k, sc in plan.items():
            for server in servers:
                try:
                    rows.append(run_one(args, k, sc, server, sim, bin_dir))
                except RuntimeError as e:
                    log(f"{k}/{server} failed: {e}")
                    skipped.append(f"{k}/{server} failed: {e}")
    finally:
        PROCS.stop_all()

    for r in rows:
        base = next((b for b in rows if b["scenario"] == r["scenario"] and b["server"] == "baseline"), None)
        if base and base["cpu_pct"] and r["cpu_pct"] is not None:
            r["cpu_ratio"] = round(r["cpu_pct"] / base["cpu_pct"], 2)

    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(), "kernel": platform.release(),
        "cpus": NCPU, "tcp_mem": open(TCP_MEM).read().strip(), "source": source, "quick": args.quick, "rate": args.rate, "bin_dir": bin_dir,
        "skipped": skipped,
        "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip(),
    }
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": rows}, f, indent=1)

    print()
    print(f"acerelay benchmark — {NCPU} cores, kernel {meta['kernel']}, source: {source}, "
          f"rate {args.rate}bit/s per player{' (quick)' if args.quick else ''}")
    print_table(rows)
    for s in skipped:
        print(f"  note: {s}")
    print(f"\nresults: {os.path.join(OUT, 'results.json')}")
    if rows and not args.no_png and write_png(rows, os.path.join(OUT, "results.png")):
        print(f"chart:   {os.path.join(OUT, 'results.png')}")
    return 0 if rows else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        PROCS.stop_all()
        log("interrupted; every started process was stopped")
        sys.exit(130)
