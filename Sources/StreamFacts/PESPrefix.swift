/// The first bytes of the current PES packet's payload on one PID, gathered
/// into a buffer allocated once.
///
/// Sequence parameter sets and audio frame headers sit at the start of a PES
/// packet, so only a prefix is kept; the rest of a large key frame is never copied.
struct PESPrefix: ~Copyable {
    private let buffer: UnsafeMutableRawBufferPointer
    /// Bytes gathered for the current PES packet.
    private(set) var count = 0
    /// True while a PES packet is being gathered (its start was seen, no packet lost since).
    private(set) var isGathering = false
    /// True when the packet outgrew the buffer: its last bytes may cut a NAL unit or frame.
    private(set) var isTruncated = false
    private var lastContinuity: UInt8?

    init(capacity: Int) {
        buffer = .allocate(byteCount: capacity, alignment: 1)
    }

    deinit {
        buffer.deallocate()
    }

    /// The gathered bytes; valid until the next mutating call.
    var contents: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[0..<count]) }

    /// True when the gathered bytes are worth examining: a packet is complete, or the buffer is full.
    var hasUnit: Bool { isGathering && count > 0 }

    /// Begins a new PES packet with the payload bytes after its header.
    mutating func start(_ payload: UnsafeRawBufferPointer, continuity: UInt8) {
        count = 0
        isTruncated = false
        isGathering = true
        lastContinuity = continuity
        append(payload)
    }

    /// Adds a continuation packet's payload. Returns true when the buffer just
    /// filled up, so the caller examines it now rather than at the next start.
    mutating func `continue`(_ payload: UnsafeRawBufferPointer, continuity: UInt8) -> Bool {
        defer { lastContinuity = continuity }
        guard isGathering else { return false }
        guard let last = lastContinuity, continuity == (last &+ 1) & 0x0F else {
            // A lost packet would splice two pieces of a NAL unit together.
            discard()
            return false
        }
        append(payload)
        return isTruncated
    }

    /// Forgets the current packet; nothing more is gathered until the next start.
    mutating func discard() {
        count = 0
        isGathering = false
        isTruncated = false
    }

    /// Marks the gathered bytes as examined: the rest of this PES packet is skipped.
    mutating func finishUnit() {
        isGathering = false
        isTruncated = false
        count = 0
    }

    private mutating func append(_ payload: UnsafeRawBufferPointer) {
        let room = buffer.count - count
        let taken = min(room, payload.count)
        if taken > 0 {
            UnsafeMutableRawBufferPointer(rebasing: buffer[count..<(count + taken)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: payload[0..<taken]))
            count += taken
        }
        if taken < payload.count || count == buffer.count {
            isTruncated = true
        }
    }
}
