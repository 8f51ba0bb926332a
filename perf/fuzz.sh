#!/usr/bin/env bash
# Builds every fuzz target with libFuzzer and AddressSanitizer, runs each for
# N seconds (default 60), and prints executions and crashes per target.
#
#   perf/fuzz.sh [seconds]                       every target
#   FUZZ_TARGETS="FuzzM3U FuzzTSStream" perf/fuzz.sh 600
#   FUZZ_NO_BUILD=1 ...                          run what .build-fuzz already holds
#
# Why built this way: the targets are SwiftPM executables (perf/fuzz/Sources), built
# in a scratch path of their own so the ordinary .build is untouched. The sanitizers
# must be one flag, -sanitize=fuzzer,address: given as two -sanitize= flags, swiftc
# keeps only the last and the code gets no coverage instrumentation (libFuzzer then
# warns "no interesting inputs", and finds nothing). -DFUZZING makes FuzzEntryPoint
# start libFuzzer's driver; without it the same executables replay files.
#
# Seeds are perf/fuzz/corpus/<target> (committed); inputs the fuzzer finds go to
# .build-fuzz/corpus/<target>, crash files to .build-fuzz/crashes/<target>/.
# Exit status: 1 when any target crashed, after all of them ran.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
all="FuzzRequestHead FuzzTSStream FuzzStreamFacts FuzzProxyProtocol FuzzEngineAnswers FuzzDockerAPI FuzzControlBodies FuzzM3U FuzzDispatcharrJSON"
targets=${FUZZ_TARGETS:-$all}
scratch=.build-fuzz
build=(swift build -c debug --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING)

for target in $targets; do
    [ -n "${FUZZ_NO_BUILD:-}" ] && break
    start=$(date +%s)
    "${build[@]}" --product "$target" 2>&1 | grep -v "warning: Cannot export local symbol" | tail -1
    echo "built $target in $(( $(date +%s) - start )) s"
done
# Not `swift build --show-bin-path`: it waits for the scratch path's lock while another build holds it.
bin=$scratch/debug

# Stream inputs and playlists are larger than libFuzzer's default 4 KiB bound.
max_len() {
    case $1 in
        FuzzTSStream|FuzzStreamFacts) echo 65536 ;;
        FuzzM3U|FuzzDispatcharrJSON|FuzzDockerAPI|FuzzEngineAnswers|FuzzControlBodies) echo 16384 ;;
        *) echo 4096 ;;
    esac
}

failed=0
results=()
for target in $targets; do
    work=$scratch/corpus/$target
    crashes=$scratch/crashes/$target
    log=$scratch/logs/$target.log
    mkdir -p "$work" "$crashes/earlier" "$(dirname "$log")"
    # Findings of earlier runs are kept aside (each became a unit test and a seed);
    # only what this run finds counts.
    find "$crashes" -maxdepth 1 -type f -exec mv -t "$crashes/earlier" {} +
    status=0
    # -timeout: one input taking more than 60 s is reported as a hang (a crash here).
    # Not lower: on a shared, loaded machine a nice'd run can wait 10 s for a CPU.
    # Swift's own backtracer off: it races libFuzzer's handler for the trap a Swift
    # runtime error raises, and under ASan its memory reader is itself reported.
    SWIFT_BACKTRACE=enable=no "$bin/$target" -max_total_time="$seconds" -timeout=60 -max_len="$(max_len "$target")" \
        -print_final_stats=1 -artifact_prefix="$crashes/" "$work" "perf/fuzz/corpus/$target" \
        >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    # slow-unit-* files only record slow inputs; crash-, leak-, oom- and timeout- are failures.
    found=$(find "$crashes" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
    if [ "$status" -ne 0 ] || [ "$found" -ne 0 ]; then
        failed=1
        echo "$target: exit $status, see $log and $crashes/"
    fi
    results+=("$(printf '%-22s %12s %8s %6ss' "$target" "${execs:-?}" "$found" "$seconds")")
done

printf '%-22s %12s %8s %7s\n' target executions crashes time
printf '%s\n' "${results[@]}"
exit $failed
