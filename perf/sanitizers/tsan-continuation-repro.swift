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
