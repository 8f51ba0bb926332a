import Synchronization

/// The bound on connections to the stream port (`--max-players`): a slot is
/// taken at accept and given back at close, so descriptors held by players
/// never reach the ones the engines, the health probes, the store and the
/// control API need.
///
/// Every connection takes a slot, a player or one still sending its head: a
/// slowloris head holds its slot until `--request-timeout`, no longer. A
/// connection beyond the bound is answered `503` with `Retry-After` at once
/// and closed, so accepting keeps the listen queue short under a flood and
/// players already streaming are not touched.
final class PlayerAdmission: Sendable {
    /// Most connections open at once; 0 for no bound (tests that do not care).
    let limit: Int
    private let open = Atomic<Int>(0)
    private let refused = Atomic<UInt64>(0)

    init(limit: Int) { self.limit = limit }

    /// Takes a slot; false (and counted as refused) when every slot is taken.
    func admit() -> Bool {
        guard limit > 0 else {
            open.add(1, ordering: .relaxed)
            return true
        }
        if open.add(1, ordering: .relaxed).newValue <= limit { return true }
        open.subtract(1, ordering: .relaxed)
        refused.add(1, ordering: .relaxed)
        return false
    }

    /// Gives back the slot of a connection that closed.
    func release() { open.subtract(1, ordering: .relaxed) }

    /// Connections holding a slot now.
    var inUse: Int { open.load(ordering: .relaxed) }

    /// Connections answered 503 because every slot was taken, since start.
    var refusedTotal: UInt64 { refused.load(ordering: .relaxed) }

    /// What a connection beyond the bound gets before it is closed.
    static let fullResponse = HTTPResponse.error(
        status: 503, code: "relay_full",
        message: "this relay serves its maximum number of players (--max-players); retry later or use another relay",
        retryAfter: 5)

    /// Answers a connection beyond the bound and closes it, without a watcher:
    /// the answer fits any fresh socket's send buffer, so one write does it.
    /// `scratch` is the calling worker's read buffer.
    static func turnAway(_ fd: Int32, scratch: UnsafeMutableRawBufferPointer) {
        // Read what already arrived: closing with unread bytes would send a reset
        // that may overtake the answer on its way to the player.
        _ = try? Syscall.read(fd, scratch)
        _ = fullResponse.withUnsafeBytes { try? Syscall.write(fd, $0) }
        Syscall.close(fd)
    }
}
