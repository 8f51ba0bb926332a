"""What the perf scripts share: ports on 127.0.0.1 for the processes they start,
and stopping those processes."""

import socket
import subprocess
import time

_handed_out = set()


def free_port():
    """A port nothing listens on now, never the same one twice in a process: the
    kernel can hand back a port just closed, and two servers would race for it."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_port(port, proc, timeout_s=60, name=None):
    """Returns once something accepts on 127.0.0.1:`port`; raises RuntimeError if
    `proc` (a Popen, or anything with poll() and returncode) exits first or the
    time runs out."""
    name = name or getattr(proc, "name", None) or "the process"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with status {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {timeout_s} s")


def stop(proc, grace_s=5):
    """SIGTERM, then SIGKILL if `proc` has not exited within `grace_s` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
