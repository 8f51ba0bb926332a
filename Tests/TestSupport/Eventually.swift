import Foundation

/// Checks `condition` every 50 ms until it holds or `timeout` seconds pass; the last check decides.
/// For conditions that are a fact to look at (a counter, a status); blocks the calling thread.
public func eventually(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(50_000)
    }
    return condition()
}
