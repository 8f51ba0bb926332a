import Foundation

/// How much slower than a plain debug build this test run is allowed to be, from
/// `ACERELAY_TEST_SLOWDOWN` (default 1). perf/sanitizers/tsan.sh sets it: under
/// ThreadSanitizer every memory access is checked, and a bound on how long something
/// takes (not a wait for an event) would otherwise measure the sanitizer.
public enum TestTiming {
    public static let slowdown: Double = {
        guard let text = ProcessInfo.processInfo.environment["ACERELAY_TEST_SLOWDOWN"],
              let value = Double(text), value >= 1 else { return 1 }
        return value
    }()

    /// `seconds` scaled by the run's slowdown.
    public static func bound(_ seconds: Double) -> Double { seconds * slowdown }
}

/// Whether this run is under ThreadSanitizer or AddressSanitizer (perf/sanitizers/run.sh
/// sets their options for every process it starts). malloc is then the sanitizer's, so
/// what glibc's malloc reports about itself (mallinfo2) is zero.
public enum SanitizedRun {
    public static let active: Bool = {
        let environment = ProcessInfo.processInfo.environment
        return environment["TSAN_OPTIONS"] != nil || environment["ASAN_OPTIONS"] != nil
    }()
}
