#if canImport(Glibc)
import Glibc
#endif

/// Turns an arbitrary byte stream into whole, verified 188-byte TS packets.
///
/// Reads from an engine do not fall on packet boundaries, and a stream may carry
/// garbage (a restarted engine, a proxy's error page, bit rot). The aligner locks
/// on three sync bytes at 188-byte spacing and then only passes a packet once the
/// sync byte of the packet after it is seen too. At most one packet is held back
/// until the next read confirms it.
///
/// A packet whose successor's sync byte is missing is held as a suspect while the
/// aligner searches for the next lock. If that lock starts inside the suspect,
/// bytes were lost and the suspect is torn: it is dropped. If the lock starts at
/// or after the suspect's end, the suspect is passed: garbage written between two
/// packets (an engine's most common fault) then costs no packet and no continuity
/// error. Bytes inserted inside a packet cannot be told apart from bytes inserted
/// after it (TS has no per-packet checksum), so such a packet is passed too; it
/// still starts with a sync byte and a valid header and keeps players aligned.
public final class TSAligner {
    /// Bytes carried between reads (an incomplete packet, the last unconfirmed
    /// packet, or the tail of an unsynchronised search), followed by new input.
    private let work: UnsafeMutableRawBufferPointer
    private var carried = 0
    private var locked = false
    /// The packet that lost its successor's sync byte, kept until the next lock says
    /// whether it was whole; allocated once, like `work`.
    private let suspect: UnsafeMutableRawBufferPointer
    /// Where the suspect ends in `work`'s coordinates (may go negative as carried
    /// bytes move to the front); nil when there is no suspect.
    private var suspectEnd: Int?

    /// Bytes thrown away because they were not part of a verified packet.
    public private(set) var discardedBytes: UInt64 = 0
    /// Times the aligner lost lock and searched for sync again.
    public private(set) var resyncs: UInt64 = 0

    /// - Parameter maxChunk: the largest input processed in one piece; bigger inputs are split.
    public init(maxChunk: Int = 64 * 1024) {
        work = .allocate(byteCount: maxChunk + 3 * TSPacket.size, alignment: 16)
        suspect = .allocate(byteCount: TSPacket.size, alignment: 16)
    }

    deinit {
        work.deallocate()
        suspect.deallocate()
    }

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
        // No lock came to refute the suspect before the input ended: it is whole.
        // (With a suspect the aligner is unlocked, so nothing above was emitted after it.)
        try passSuspect(emit: emit)
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
                        // Garbage follows packet i, or bytes were inserted or lost inside it;
                        // where the next lock starts tells which.
                        try flushRun(w, from: runStart, to: i, emit: emit)
                        holdSuspect(w, at: i)
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
                    if let end = suspectEnd {
                        if i >= end {
                            try passSuspect(emit: emit)
                        } else {
                            // The new lock starts inside the suspect: bytes were lost, it is torn.
                            suspectEnd = nil
                        }
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
        if let end = suspectEnd { suspectEnd = end - i }
    }

    private func holdSuspect(_ w: UnsafeRawBufferPointer, at start: Int) {
        suspect.copyMemory(from: UnsafeRawBufferPointer(rebasing: w[start..<start + TSPacket.size]))
        suspectEnd = start + TSPacket.size
    }

    /// Emits the suspect; its bytes were counted as discarded while the search ran over them.
    private func passSuspect(emit: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        guard suspectEnd != nil else { return }
        suspectEnd = nil
        discardedBytes -= UInt64(TSPacket.size)
        try emit(UnsafeRawBufferPointer(suspect))
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
