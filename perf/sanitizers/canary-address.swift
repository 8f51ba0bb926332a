// A deliberate heap overflow: perf/sanitizers/run.sh builds and runs this first, with the
// same ASAN_OPTIONS as the tests, and fails unless it is reported. It proves that reports
// reach the reports directory, so "0 reports" from the suite means something.
let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 16)
let index = Int(CommandLine.arguments.count) + 15  // 16: one past the end, unknown to the optimiser
buffer[index] = 1
print("canary done", buffer[0])
buffer.deallocate()
