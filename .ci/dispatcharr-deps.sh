#!/usr/bin/env bash
# What the real Dispatcharr (../shared/tools/real-dispatcharr, used by Tests/DispatcharrTests)
# needs on a fresh Debian 12 machine: PostgreSQL 15 (server and psql), Redis (server and
# redis-cli), Python 3.11 with venv, curl (start.sh polls the API with it). PyPI must be
# reachable: start.sh builds its virtualenv (/tmp/dispatcharr-venv) on first use.
#
# Usage: .ci/dispatcharr-deps.sh [--warm]
#   --warm  also start the real Dispatcharr once and stop it, so the virtualenv is built
#           here (about 40 s) rather than inside the first test run.
# Run as root. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-upgrade postgresql redis-server python3 python3-venv curl ca-certificates

if [ "${1:-}" = "--warm" ]; then
  tool=""
  for candidate in ../shared/tools/real-dispatcharr /work/shared/tools/real-dispatcharr; do
    [ -x "$candidate/start.sh" ] && { tool="$candidate"; break; }
  done
  [ -n "$tool" ] || { echo "dispatcharr-deps: real-dispatcharr not found beside the repository" >&2; exit 1; }
  state="$(mktemp -d)"
  chmod 755 "$state"   # start.sh runs PostgreSQL as user postgres, which must reach its data directory
  out="$state/out"
  "$tool/start.sh" "$state/dir" "${WARM_PORT:-19391}" >"$out" 2>"$state/err" &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q '^READY ' "$out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$state/err" >&2; exit 1; }
    sleep 0.5
  done
  grep -q '^READY ' "$out" || { echo "dispatcharr-deps: start.sh did not get ready" >&2; kill -TERM "$pid"; exit 1; }
  kill -TERM "$pid"
  wait "$pid" || true
  rm -rf "$state"
  echo "dispatcharr-deps: virtualenv ready"
fi
