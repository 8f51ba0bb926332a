// ThreadSanitizer on Linux reports a data race here, though the continuation orders the
// two accesses: the Handle is built on a Thread, handed over by resume(returning:), and
// read by the task after its await. TSan does not see the concurrency runtime's hand-off
// to the global executor. Swift 6.3.1, Debian 12:
//   swiftc -swift-version 6 -sanitize=thread perf/sanitizers/tsan-continuation-repro.swift -o /tmp/c && /tmp/c
// (acerelay's one instance, RelayServer.openProbe, is suppressed in tsan.supp.)
import Foundation
final class Handle: @unchecked Sendable {
    var a: Int; var b: String
    init(a: Int, b: String) { self.a = a; self.b = b }
}
nonisolated func open() async -> Handle {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: Handle(a: 42, b: "x")) }.start()
    }
}
nonisolated func many() async -> Int {
    var total = 0
    for _ in 0..<200 { let h = await open(); total += h.a + h.b.count }
    return total
}
let t = Task.detached { await many() }
print("done", await t.value)
