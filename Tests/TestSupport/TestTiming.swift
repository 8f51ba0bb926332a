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
