@testable import RelayCore

/// Builds small, valid transport streams for tests: PAT, PMT (one H.264 PID),
/// video packets with optional key-frame flags and PCR, continuity counters per PID.
struct TSBuilder {
    static let pmtPID: UInt16 = 0x1000
    static let videoPID: UInt16 = 0x100
    private var counters: [UInt16: UInt8] = [:]

    mutating func packet(pid: UInt16, unitStart: Bool = false, randomAccess: Bool = false, pcr: UInt64? = nil, payload: [UInt8] = []) -> [UInt8] {
        var p = [UInt8](repeating: 0xFF, count: 188)
        p[0] = 0x47
        p[1] = (unitStart ? 0x40 : 0) | UInt8(pid >> 8 & 0x1F)
        p[2] = UInt8(pid & 0xFF)
        let cc = counters[pid, default: 0]
        counters[pid] = (cc + 1) & 0x0F
        var index = 4
        if randomAccess || pcr != nil {
            p[3] = 0x30 | cc
            let length = pcr != nil ? 7 : 1
            p[4] = UInt8(length)
            p[5] = (randomAccess ? 0x40 : 0) | (pcr != nil ? 0x10 : 0)
            if let pcr {
                let base = pcr / 300, ext = pcr % 300
                p[6] = UInt8(base >> 25 & 0xFF); p[7] = UInt8(base >> 17 & 0xFF)
                p[8] = UInt8(base >> 9 & 0xFF); p[9] = UInt8(base >> 1 & 0xFF)
                p[10] = UInt8((base & 1) << 7) | 0x7E | UInt8(ext >> 8 & 1)
                p[11] = UInt8(ext & 0xFF)
            }
            index = 5 + length
        } else {
            p[3] = 0x10 | cc
        }
        for (i, b) in payload.enumerated() where index + i < 188 { p[index + i] = b }
        return p
    }

    mutating func pat() -> [UInt8] {
        // pointer, table 0, length 13, tsid 1, version, section 0/0, program 1 -> PMT PID, CRC (unchecked)
        packet(pid: 0, unitStart: true, payload: [0x00, 0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00,
                                                0x00, 0x01, 0xE0 | UInt8(Self.pmtPID >> 8), UInt8(Self.pmtPID & 0xFF), 0, 0, 0, 0])
    }

    mutating func pmt() -> [UInt8] {
        // table 2, length 18, program 1, PCR PID = video, no program info, one stream: H.264 on videoPID.
        packet(pid: Self.pmtPID, unitStart: true, payload: [0x00, 0x02, 0xB0, 0x12, 0x00, 0x01, 0xC1, 0x00, 0x00,
                                                           0xE0 | UInt8(Self.videoPID >> 8), UInt8(Self.videoPID & 0xFF), 0xF0, 0x00,
                                                           0x1B, 0xE0 | UInt8(Self.videoPID >> 8), UInt8(Self.videoPID & 0xFF), 0xF0, 0x00, 0, 0, 0, 0])
    }

    /// A group of pictures: PAT, PMT, a key-frame start, then `count` plain video packets.
    mutating func gop(count: Int, pcr: UInt64? = nil) -> [UInt8] {
        var out = pat() + pmt()
        out += packet(pid: Self.videoPID, unitStart: true, randomAccess: true, pcr: pcr, payload: [0, 0, 1, 0xE0])
        for _ in 0..<count { out += packet(pid: Self.videoPID) }
        return out
    }
}
