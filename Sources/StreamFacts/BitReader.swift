/// Reads a byte buffer most-significant bit first, as H.264/H.265 syntax and
/// audio frame headers are written, including Exp-Golomb codes.
///
/// The reader does not own its bytes: the buffer must outlive it. Reading past
/// the end throws `BitReader.Overrun` instead of trapping, since every caller
/// reads bytes that came off the network.
public struct BitReader {
    /// Thrown when a read needs more bits than remain, or an Exp-Golomb code is
    /// longer than 32 bits (which no valid stream contains).
    public struct Overrun: Error, Equatable {}

    private let bytes: UnsafeRawBufferPointer
    /// Index of the next bit to read, from the start of `bytes`.
    public private(set) var position: Int = 0

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Bits left to read.
    public var remaining: Int { bytes.count * 8 - position }

    /// Reads `count` bits (0...32) as an unsigned number.
    public mutating func bits(_ count: Int) throws(Overrun) -> UInt32 {
        precondition((0...32).contains(count), "at most 32 bits per read")
        guard count <= remaining else { throw Overrun() }
        var value: UInt32 = 0
        for _ in 0..<count {
            let byte = bytes[position >> 3]
            let bit = (byte >> (7 - UInt8(position & 7))) & 1
            value = value << 1 | UInt32(bit)
            position += 1
        }
        return value
    }

    /// Reads one bit as a flag.
    public mutating func flag() throws(Overrun) -> Bool {
        try bits(1) == 1
    }

    /// Skips `count` bits.
    public mutating func skip(_ count: Int) throws(Overrun) {
        guard count >= 0, count <= remaining else { throw Overrun() }
        position += count
    }

    /// Reads an unsigned Exp-Golomb code, `ue(v)`.
    public mutating func ue() throws(Overrun) -> UInt32 {
        var leadingZeros = 0
        while try !flag() {
            leadingZeros += 1
            // 2^32 - 1 is the largest value a 32-bit code can carry.
            guard leadingZeros < 32 else { throw Overrun() }
        }
        if leadingZeros == 0 { return 0 }
        let suffix = try bits(leadingZeros)
        return UInt32((UInt64(1) << leadingZeros) - 1 + UInt64(suffix))
    }

    /// Reads a signed Exp-Golomb code, `se(v)`: 1, -1, 2, -2, ... for codes 1, 2, 3, 4, ...
    public mutating func se() throws(Overrun) -> Int32 {
        let code = Int64(try ue())
        let magnitude = (code + 1) / 2
        return Int32(truncatingIfNeeded: code & 1 == 1 ? magnitude : -magnitude)
    }
}
