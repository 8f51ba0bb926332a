/// Reading and patching the few MPEG-TS header fields the simulator touches.
///
/// Every function takes a buffer and the offset of a packet's first byte, so
/// callers patch packets in place without slicing (no copy, no allocation).
enum TransportPacket {
    /// Bytes in one transport packet.
    static let size = 188
    /// The first byte of every packet.
    static let syncByte: UInt8 = 0x47
    /// PID of null (stuffing) packets, whose continuity counter means nothing.
    static let nullPID: UInt16 = 0x1FFF
    /// PTS, DTS and the PCR base are 33-bit counters that wrap at this value.
    static let timestampModulus: Int64 = 1 << 33

    /// The packet's 13-bit PID.
    static func pid(_ p: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        UInt16(p[at + 1] & 0x1F) << 8 | UInt16(p[at + 2])
    }

    /// Whether payload_unit_start_indicator is set (a PES packet or PSI section starts here).
    static func startsPayloadUnit(_ p: UnsafeRawBufferPointer, _ at: Int) -> Bool {
        p[at + 1] & 0x40 != 0
    }

    /// Whether the packet has an adaptation field.
    static func hasAdaptationField(_ p: UnsafeRawBufferPointer, _ at: Int) -> Bool {
        p[at + 3] & 0x20 != 0
    }

    /// Whether the packet carries payload (only such packets advance the continuity counter).
    static func hasPayload(_ p: UnsafeRawBufferPointer, _ at: Int) -> Bool {
        p[at + 3] & 0x10 != 0
    }

    /// The 4-bit continuity counter.
    static func continuityCounter(_ p: UnsafeRawBufferPointer, _ at: Int) -> UInt8 {
        p[at + 3] & 0x0F
    }

    /// Offset of the payload inside the packet, or nil when the adaptation field claims too much.
    static func payloadOffset(_ p: UnsafeRawBufferPointer, _ at: Int) -> Int? {
        guard hasAdaptationField(p, at) else { return 4 }
        let offset = 5 + Int(p[at + 4])
        return offset <= size ? offset : nil
    }

    /// Offset inside the packet of the 6-byte PCR field, when the adaptation field has one.
    static func pcrOffset(_ p: UnsafeRawBufferPointer, _ at: Int) -> Int? {
        guard hasAdaptationField(p, at), p[at + 4] >= 7, p[at + 5] & 0x10 != 0 else { return nil }
        return 6
    }

    /// The PCR at `at + offset`, in 27 MHz ticks (base × 300 + extension).
    static func readPCR(_ p: UnsafeRawBufferPointer, _ at: Int) -> Int64 {
        let base = Int64(p[at]) << 25 | Int64(p[at + 1]) << 17 | Int64(p[at + 2]) << 9
            | Int64(p[at + 3]) << 1 | Int64(p[at + 4] >> 7)
        let fraction = Int64(p[at + 4] & 0x01) << 8 | Int64(p[at + 5])
        return base * 300 + fraction
    }

    /// Adds `ticks90kHz` to the PCR base at `at`, keeping the extension and reserved bits.
    static func shiftPCR(_ p: UnsafeMutableRawBufferPointer, _ at: Int, by ticks90kHz: Int64) {
        let old = readPCR(UnsafeRawBufferPointer(p), at) / 300
        let base = (old + ticks90kHz) % timestampModulus
        p[at] = UInt8(truncatingIfNeeded: base >> 25)
        p[at + 1] = UInt8(truncatingIfNeeded: base >> 17)
        p[at + 2] = UInt8(truncatingIfNeeded: base >> 9)
        p[at + 3] = UInt8(truncatingIfNeeded: base >> 1)
        p[at + 4] = (p[at + 4] & 0x7F) | UInt8(truncatingIfNeeded: (base & 1) << 7)
    }

    /// Writes a PCR of `ticks27MHz` at `at` (6 bytes, reserved bits set).
    static func writePCR(_ p: UnsafeMutableRawBufferPointer, _ at: Int, ticks27MHz: Int64) {
        let base = (ticks27MHz / 300) % timestampModulus
        let fraction = ticks27MHz % 300
        p[at] = UInt8(truncatingIfNeeded: base >> 25)
        p[at + 1] = UInt8(truncatingIfNeeded: base >> 17)
        p[at + 2] = UInt8(truncatingIfNeeded: base >> 9)
        p[at + 3] = UInt8(truncatingIfNeeded: base >> 1)
        p[at + 4] = UInt8(truncatingIfNeeded: (base & 1) << 7) | 0x7E | UInt8(truncatingIfNeeded: fraction >> 8)
        p[at + 5] = UInt8(truncatingIfNeeded: fraction)
    }

    /// The 33-bit PTS or DTS whose 5 bytes start at `at`.
    static func readTimestamp(_ p: UnsafeRawBufferPointer, _ at: Int) -> Int64 {
        Int64((p[at] >> 1) & 0x07) << 30 | Int64(p[at + 1]) << 22 | Int64(p[at + 2] >> 1) << 15
            | Int64(p[at + 3]) << 7 | Int64(p[at + 4] >> 1)
    }

    /// Writes a 33-bit PTS or DTS at `at`, keeping the 4-bit prefix already there.
    static func writeTimestamp(_ p: UnsafeMutableRawBufferPointer, _ at: Int, _ value: Int64) {
        let ts = value % timestampModulus
        p[at] = (p[at] & 0xF0) | UInt8(truncatingIfNeeded: (ts >> 29) & 0x0E) | 0x01
        p[at + 1] = UInt8(truncatingIfNeeded: ts >> 22)
        p[at + 2] = UInt8(truncatingIfNeeded: (ts >> 14) & 0xFE) | 0x01
        p[at + 3] = UInt8(truncatingIfNeeded: ts >> 7)
        p[at + 4] = UInt8(truncatingIfNeeded: (ts << 1) & 0xFE) | 0x01
    }

    /// Adds `ticks` to the PTS or DTS at `at`, wrapping at 33 bits.
    static func shiftTimestamp(_ p: UnsafeMutableRawBufferPointer, _ at: Int, by ticks: Int64) {
        writeTimestamp(p, at, readTimestamp(UnsafeRawBufferPointer(p), at) + ticks)
    }

    /// Offsets, inside the packet, of the PTS and DTS of a PES header that starts in this packet.
    ///
    /// Returns nil for packets that start no PES packet with an optional header.
    static func pesTimestampOffsets(_ p: UnsafeRawBufferPointer, _ at: Int) -> (pts: Int?, dts: Int?)? {
        guard startsPayloadUnit(p, at), hasPayload(p, at), let payload = payloadOffset(p, at),
              payload + 9 <= size else { return nil }
        let q = at + payload
        guard p[q] == 0, p[q + 1] == 0, p[q + 2] == 1, p[q + 6] & 0xC0 == 0x80 else { return nil }
        // Stream ids whose PES packets have no optional header (ISO/IEC 13818-1, 2.4.3.7).
        switch p[q + 3] {
        case 0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xF2, 0xF8, 0xFF: return nil
        default: break
        }
        let flags = p[q + 7] >> 6
        let pts = flags & 0x2 != 0 && payload + 14 <= size ? payload + 9 : nil
        let dts = flags == 0x3 && payload + 19 <= size ? payload + 14 : nil
        return (pts, dts)
    }

    /// CRC-32/MPEG-2 of a PSI section (polynomial 0x04C11DB7, no reflection, no final xor).
    static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte) << 24
            for _ in 0..<8 {
                crc = crc & 0x8000_0000 != 0 ? (crc << 1) ^ 0x04C1_1DB7 : crc << 1
            }
        }
        return crc
    }
}
