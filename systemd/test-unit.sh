#!/bin/sh
# Checks systemd/acerelay.service offline, without systemd running:
#  1. systemd-analyze verify prints nothing (it exits 0 even on "Failed to
#     parse ..., ignoring", so any output is a failure);
#  2. systemd-analyze security --offline=true rates the exposure at most 1.5
#     (the --threshold is on a 0-100 scale: 15 means 1.5).
#
# verify needs ExecStart's binary to exist, so the unit is checked as a copy
# whose ExecStart points at $ACERELAY_BIN (default: a built acerelay, else a
# stand-in executable). Usage: systemd/test-unit.sh [unit-file]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
unit=${1:-$here/acerelay.service}
threshold=${ACERELAY_EXPOSURE_THRESHOLD:-15}

command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bin=${ACERELAY_BIN:-}
if [ -z "$bin" ]; then
    for candidate in "$here/../.build/release/acerelay" "$here/../.build/debug/acerelay"; do
        [ -x "$candidate" ] && { bin=$(cd "$(dirname "$candidate")" && pwd)/acerelay; break; }
    done
fi
if [ -z "$bin" ]; then
    # verify checks only that the path is an executable file.
    bin=$work/acerelay
    printf '#!/bin/sh\nexit 0\n' > "$bin"
    chmod 755 "$bin"
fi

# The unit name must stay acerelay.service: verify derives names from it.
mkdir -p "$work/unit"
sed "s|^ExecStart=/usr/bin/acerelay|ExecStart=$bin|" "$unit" > "$work/unit/acerelay.service"
grep -q "^ExecStart=$bin " "$work/unit/acerelay.service" || { echo "FAIL: no ExecStart=/usr/bin/acerelay line in $unit" >&2; exit 1; }

echo "== systemd-analyze verify (ExecStart=$bin)"
# SYSTEMD_LOG_LEVEL keeps the tool's own debug noise out; warnings and errors still print.
out=$(cd "$work/unit" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no ./acerelay.service 2>&1) || {
    echo "$out"; echo "FAIL: systemd-analyze verify exited non-zero" >&2; exit 1; }
if [ -n "$out" ]; then
    echo "$out"
    echo "FAIL: systemd-analyze verify printed the above" >&2
    exit 1
fi
echo "clean"

echo "== systemd-analyze security --offline=true --threshold=$threshold"
if ! (cd "$work/unit" && systemd-analyze security --offline=true --threshold="$threshold" --no-pager ./acerelay.service > "$work/security.txt" 2>&1); then
    cat "$work/security.txt"
    echo "FAIL: exposure above $threshold (on the 0-100 scale)" >&2
    exit 1
fi
grep -i "overall exposure" "$work/security.txt"
echo "PASS"
