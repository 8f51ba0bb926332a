/// Checks a received byte stream the way a demuxer would.
struct TSCheck {
    /// Bytes not on a 188-byte packet grid starting with 0x47.
    var misaligned = 0
    /// Continuity counter jumps per the standard (null packets and duplicates excluded).
    var continuityErrors = 0
    var packets = 0
    var nullPackets = 0
    var pids: Set<UInt16> = []

    init(_ data: [UInt8]) {
        var last: [UInt16: UInt8] = [:]
        var i = 0
        while i + 188 <= data.count {
            guard data[i] == 0x47 else { misaligned += 1; i += 1; continue }
            packets += 1
            let pid = UInt16(data[i + 1] & 0x1F) << 8 | UInt16(data[i + 2])
            let control = (data[i + 3] >> 4) & 3
            let cc = data[i + 3] & 0x0F
            if pid == 0x1FFF { nullPackets += 1; i += 188; continue }
            pids.insert(pid)
            let discontinuity = control & 2 != 0 && data[i + 4] > 0 && data[i + 5] & 0x80 != 0
            if control & 1 != 0 {
                if let previous = last[pid], !discontinuity, cc != (previous + 1) & 0x0F, cc != previous { continuityErrors += 1 }
                last[pid] = cc
            }
            i += 188
        }
    }

    /// PID of the first packet (a join point starts with the PAT, PID 0).
    static func firstPID(_ data: [UInt8]) -> UInt16? {
        guard data.count >= 3, data[0] == 0x47 else { return nil }
        return UInt16(data[1] & 0x1F) << 8 | UInt16(data[2])
    }
}
