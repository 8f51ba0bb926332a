/// The start of a PES packet: stream id, timestamps and where the payload begins.
public struct PESHeader: Equatable, Sendable {
    /// 0xE0–0xEF video, 0xC0–0xDF MPEG audio, 0xBD private stream 1 (AC-3 in DVB), ...
    public var streamID: UInt8
    /// Presentation time stamp, 90 kHz, 33 bits.
    public var pts: UInt64?
    /// Decoding time stamp, 90 kHz, 33 bits; nil when equal to the PTS (not sent).
    public var dts: UInt64?
    /// Offset of the first payload byte from the start of the PES packet.
    public var payloadOffset: Int

    /// Parses a PES header at the start of `bytes`. Nil without the `00 00 01`
    /// prefix, or when the header does not fit in `bytes`.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 9, bytes[0] == 0, bytes[1] == 0, bytes[2] == 1 else { return nil }
        streamID = bytes[3]
        pts = nil
        dts = nil
        switch streamID {
        case 0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xF2, 0xF8, 0xFF:
            // Stream types without the optional header (padding, private 2, ECM, ...).
            payloadOffset = 6
            return
        default:
            break
        }
        guard bytes[6] & 0xC0 == 0x80 else { return nil }
        let flags = bytes[7] >> 6
        payloadOffset = 9 + Int(bytes[8])
        guard payloadOffset <= bytes.count else { return nil }
        if flags & 0x2 != 0, payloadOffset >= 14 {
            pts = Self.timestamp(bytes, at: 9)
        }
        if flags == 0x3, payloadOffset >= 19 {
            dts = Self.timestamp(bytes, at: 14)
        }
    }

    private static func timestamp(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64? {
        // Each part ends in a marker bit that must be 1.
        guard bytes[offset] & 1 == 1, bytes[offset + 2] & 1 == 1, bytes[offset + 4] & 1 == 1 else { return nil }
        let high = UInt64(bytes[offset] >> 1 & 0x07) << 30
        let middle = (UInt64(bytes[offset + 1]) << 7 | UInt64(bytes[offset + 2] >> 1)) << 15
        let low = UInt64(bytes[offset + 3]) << 7 | UInt64(bytes[offset + 4] >> 1)
        return high | middle | low
    }
}
