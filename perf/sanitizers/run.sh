#!/usr/bin/env bash
# The test suite under a sanitizer. From the repository root:
#
#   perf/sanitizers/run.sh thread                      RelayCore and the integration tests (CI)
#   perf/sanitizers/run.sh address                     the same under AddressSanitizer
#   SANITIZE_FILTER=all perf/sanitizers/run.sh address  every test target
#   SANITIZE_FILTER='StreamsTests|StoreTests' perf/sanitizers/run.sh thread
#
# Everything is built with -sanitize=<name> in a scratch path of its own (.build-tsan,
# .build-asan), the acerelay binary and engine simulator the integration tests start
# included, so their threads and heaps are checked too. Every instrumented process writes
# its reports to <scratch>/reports/<name>.<pid>. A canary (canary-<name>.swift) with a
# deliberate fault runs first with the same options and must be reported, so a silent
# suite means something. The run fails when a test fails or any process reported.
#
# ThreadSanitizer and Synchronization.Mutex: on Linux TSan does not see Mutex's futex
# locking and reports every guarded access (tsan-mutex-repro.swift), which is why the
# project locks with its own pthread-based `Locked` (Sources/Locking). Suppressions, each
# explained, are in tsan.supp. ACERELAY_TEST_SLOWDOWN scales the few tests that bound a
# duration rather than wait for an event.
set -euo pipefail

# Everything is in one function, read whole before it runs: bash reads a script as it
# goes, and an edit to this file during a 20-minute run would otherwise be executed
# from the middle of a line.
main() {
    cd "$(dirname "$0")/../.."

    sanitizer=${1:?usage: perf/sanitizers/run.sh thread|address}
    case $sanitizer in
        thread)
            scratch=.build-tsan; report=tsan; variable=TSAN_OPTIONS
            options="halt_on_error=0 exitcode=0 suppressions=$PWD/perf/sanitizers/tsan.supp"
            pattern='WARNING: ThreadSanitizer' ;;
        address)
            # Leaks are checked too (LeakSanitizer, at each process's exit; suppressions in lsan.supp).
            scratch=.build-asan; report=asan; variable=ASAN_OPTIONS
            options="detect_leaks=1 suppressions=$PWD/perf/sanitizers/asan.supp"
            export LSAN_OPTIONS="suppressions=$PWD/perf/sanitizers/lsan.supp"
            pattern='ERROR: (AddressSanitizer|LeakSanitizer)' ;;
        *) echo "usage: perf/sanitizers/run.sh thread|address" >&2; exit 2 ;;
    esac
    filter=${SANITIZE_FILTER:-'RelayCoreTests|IntegrationTests'}
    reports=$scratch/reports

    start=$(date +%s)
    mkdir -p "$scratch"
    if ! swift build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch" > "$scratch/build.log" 2>&1; then
        grep -E 'error:' "$scratch/build.log" | head -40
        echo "$report: the build failed ($scratch/build.log)" >&2
        exit 1
    fi
    echo "$report: built in $(( $(date +%s) - start )) s"

    export "$variable"="$options log_path=$PWD/$reports/$report"
    mkdir -p "$reports"
    rm -f "$reports/$report".*
    # (ld.gold warns about every ASan symbol it cannot export; that is noise, not a failure.)
    swiftc -sanitize="$sanitizer" -o "$scratch/canary-$sanitizer" "perf/sanitizers/canary-$sanitizer.swift" 2>&1 \
        | { grep -v 'Cannot export local symbol' || true; }
    "$scratch/canary-$sanitizer" > /dev/null 2>&1 || true
    if ! cat "$reports/$report".* 2>/dev/null | grep -Eq "$pattern"; then
        echo "$report: the canary's fault was not reported, so the suite's reports would not be seen" >&2
        exit 1
    fi
    rm -f "$reports/$report".*
    echo "$report: the canary's fault was reported"

    selection=(--filter "$filter")
    [ "$filter" = all ] && selection=()
    start=$(date +%s)
    status=0
    ACERELAY_TEST_SLOWDOWN=${ACERELAY_TEST_SLOWDOWN:-4} \
        swift test --skip-build --sanitize="$sanitizer" --scratch-path "$scratch" --no-parallel "${selection[@]}" || status=$?

    count=$(cat "$reports/$report".* 2>/dev/null | grep -Ec "$pattern" || true)
    processes=$(grep -El "$pattern" "$reports/$report".* 2>/dev/null | wc -l || true)
    echo "$report: tests exited $status after $(( $(date +%s) - start )) s; $count reports from $processes processes ($reports/)"
    if [ "$count" != 0 ]; then
        for file in $(grep -El "$pattern" "$reports/$report".*); do
            echo "== $file"
            grep -E -A14 "$pattern" "$file" | head -60
        done
        status=1
    fi
    exit "$status"
}

main "$@"
