/// Reassembles one PSI section (PAT or PMT) from the TS packets of one PID into
/// a buffer allocated once.
///
/// Only the first section that starts in a payload is kept; a continuity
/// break or a section that outgrows the 1,024 bytes the standard allows drops
/// what was gathered, and the next payload-unit start begins again.
struct PSISectionAssembler: ~Copyable {
    /// ISO/IEC 13818-1 caps PAT and PMT sections at 1,021 bytes after the length field.
    static let capacity = 1024

    private let buffer: UnsafeMutableRawBufferPointer
    /// Bytes gathered so far; 0 while waiting for a payload-unit start.
    private var filled = 0
    /// The section's full length once its header is in; nil before that.
    private var expected: Int?
    private var lastContinuity: UInt8?

    init() {
        buffer = .allocate(byteCount: Self.capacity, alignment: 1)
    }

    deinit {
        buffer.deallocate()
    }

    /// Feeds one packet's payload; returns the complete section when this packet
    /// finishes one (valid until the next call), otherwise nil.
    mutating func append(payload: UnsafeRawBufferPointer, unitStart: Bool, continuity: UInt8) -> UnsafeRawBufferPointer? {
        defer { lastContinuity = continuity }
        var bytes = payload[...]
        if unitStart {
            guard let pointer = bytes.first, Int(pointer) + 1 <= bytes.count else { reset(); return nil }
            if filled > 0, let last = lastContinuity, continuity == (last &+ 1) & 0x0F {
                // The bytes before the pointer finish the section in progress.
                if let section = add(UnsafeRawBufferPointer(rebasing: bytes.dropFirst().prefix(Int(pointer)))) {
                    return section
                }
            }
            reset()
            bytes = bytes.dropFirst(1 + Int(pointer))
            guard let tableID = bytes.first, tableID != 0xFF else { return nil }
            filled = 0
            return add(UnsafeRawBufferPointer(rebasing: bytes))
        }
        guard filled > 0, let last = lastContinuity, continuity == (last &+ 1) & 0x0F else {
            reset()
            return nil
        }
        return add(UnsafeRawBufferPointer(rebasing: bytes))
    }

    private mutating func reset() {
        filled = 0
        expected = nil
    }

    private mutating func add(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let room = Self.capacity - filled
        let count = min(bytes.count, room)
        if count > 0 {
            UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<(filled + count)]).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes.prefix(count)))
        }
        filled += count
        if expected == nil, filled >= 3 {
            let length = 3 + (Int(buffer[1] & 0x0F) << 8 | Int(buffer[2]))
            guard length <= Self.capacity, length >= 3 + 9 else { reset(); return nil }
            expected = length
        }
        guard let expected, filled >= expected else {
            if filled == Self.capacity { reset() }
            return nil
        }
        let section = UnsafeRawBufferPointer(rebasing: buffer[0..<expected])
        reset()
        return section
    }
}

/// The program association table (PID 0): which PID carries each program's PMT.
public enum PAT {
    /// The PMT PID of the first program (program_number ≠ 0) in a complete PAT
    /// section, or nil when the section is not a valid PAT or fails its CRC.
    public static func firstProgramMapPID(section: UnsafeRawBufferPointer) -> UInt16? {
        guard section.count >= 12 + 4, section[0] == 0x00, section[1] & 0x80 != 0,
              CRC32MPEG.checksum(section) == 0 else { return nil }
        var offset = 8
        while offset + 4 <= section.count - 4 {
            let program = UInt16(section[offset]) << 8 | UInt16(section[offset + 1])
            let pid = UInt16(section[offset + 2] & 0x1F) << 8 | UInt16(section[offset + 3])
            if program != 0 { return pid }
            offset += 4
        }
        return nil
    }
}
