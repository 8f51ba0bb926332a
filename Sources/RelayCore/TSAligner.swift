#if canImport(Glibc)
import Glibc
#endif

/// Turns an arbitrary byte stream into whole, verified 188-byte TS packets.
///
/// Reads from an engine do not fall on packet boundaries, and a stream may carry
/// garbage (a restarted engine, a proxy's error page, bit rot). The aligner locks
/// on three sync bytes at 188-byte spacing and then only passes a packet once the
/// sync byte of the packet after it is seen too, so a packet torn by inserted or
/// lost bytes is dropped rather than sent to players. At most one packet is
/// held back until the next read confirms it.
public final class TSAligner {
    /// Bytes carried between reads (an incomplete packet, the last unconfirmed
    /// packet, or the tail of an unsynchronised search), followed by new input.
    private let work: UnsafeMutableRawBufferPointer
    private var carried = 0
    private var locked = false

    /// Bytes thrown away because they were not part of a verified packet.
    public private(set) var discardedBytes: UInt64 = 0
    /// Times the aligner lost lock and searched for sync again.
    public private(set) var resyncs: UInt64 = 0

    /// - Parameter maxChunk: the largest input processed in one piece; bigger inputs are split.
    public init(maxChunk: Int = 64 * 1024) {
        work = .allocate(byteCount: maxChunk + 3 * TSPacket.size, alignment: 16)
    }

    deinit { work.deallocate() }

    private var chunkLimit: Int { work.count - 3 * TSPacket.size }

    /// Feeds bytes; `emit` receives runs of whole packets, each run contiguous and
    /// valid only during the call.
    public func feed(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        var rest = input
        while !rest.isEmpty {
            let take = min(rest.count, chunkLimit)
            try process(UnsafeRawBufferPointer(rebasing: rest[..<take]), emit: emit)
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
        }
    }

    /// Passes on a held packet whose successor will never come (the input ended).
    public func finish(emit: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        if locked, carried == TSPacket.size, work[0] == TSPacket.syncByte {
            try emit(UnsafeRawBufferPointer(rebasing: work[0..<TSPacket.size]))
        } else {
            discardedBytes += UInt64(carried)
        }
        carried = 0
        locked = false
    }

    private func process(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        let size = TSPacket.size
        let sync = TSPacket.syncByte
        let carriedBefore = carried
        (work.baseAddress! + carriedBefore).copyMemory(from: input.baseAddress!, byteCount: input.count)
        let n = carried + input.count
        var i = 0
        var runStart = locked ? 0 : -1
        let w = UnsafeRawBufferPointer(work)
        do {
            while i < n {
                if locked {
                    if w[i] != sync {
                        try flushRun(w, from: runStart, to: i, emit: emit)
                        lostLock()
                        runStart = -1
                        continue
                    }
                    // Hold the last packet until its successor's sync byte confirms it.
                    if i + size >= n { break }
                    if w[i + size] == sync {
                        i += size
                    } else {
                        // Packet i is torn: something was inserted or lost inside it.
                        try flushRun(w, from: runStart, to: i, emit: emit)
                        lostLock()
                        runStart = -1
                        i += 1
                        discardedBytes += 1
                    }
                } else {
                    var k = i
                    var found = false
                    while k + 2 * size < n {
                        if w[k] == sync, w[k + size] == sync, w[k + 2 * size] == sync { found = true; break }
                        k += 1
                    }
                    discardedBytes += UInt64(k - i)
                    i = k
                    if !found {
                        // Keep only what could still start a lock once more bytes arrive.
                        let keepFrom = max(i, n - 2 * size)
                        discardedBytes += UInt64(keepFrom - i)
                        i = keepFrom
                        break
                    }
                    locked = true
                    runStart = i
                }
            }
            if locked { try flushRun(w, from: runStart, to: i, emit: emit) }
        }
        carried = n - i
        if carried > 0, i > 0 {
            let from = i
            let count = carried
            memmove(work.baseAddress!, work.baseAddress! + from, count)
        }
    }

    private func flushRun(_ w: UnsafeRawBufferPointer, from start: Int, to end: Int, emit: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        guard start >= 0, end > start else { return }
        try emit(UnsafeRawBufferPointer(rebasing: w[start..<end]))
    }

    private func lostLock() {
        locked = false
        resyncs += 1
    }
}
