// A deliberate data race: perf/sanitizers/run.sh builds and runs this first, with the
// same TSAN_OPTIONS as the tests, and fails unless it is reported. It proves that
// reports reach the reports directory, so "0 reports" from the suite means something.
import Foundation

final class Unguarded: @unchecked Sendable { var count = 0 }
let shared = Unguarded()
let writer = Thread { for _ in 0..<100_000 { shared.count += 1 } }
writer.start()
for _ in 0..<100_000 { shared.count += 1 }
sleep(1)
print("canary done", shared.count)
