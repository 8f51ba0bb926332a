/// An independent MPEG-TS reader for tests: alignment, continuity and timestamp order.
struct TransportStreamChecker {
    /// Packets read.
    private(set) var packets = 0
    /// Packets whose first byte was not 0x47.
    private(set) var syncErrors = 0
    /// Continuity counter jumps, per PID, as a player counts them.
    private(set) var continuityErrors = 0
    /// PCR values that did not rise (on any PID).
    private(set) var pcrRegressions = 0
    /// Largest gap between consecutive PCRs, in 27 MHz ticks.
    private(set) var largestPCRGap: Int64 = 0
    /// PTS values that did not rise, per PID (filler streams have no reordering).
    private(set) var ptsRegressions = 0
    /// First and last PCR seen (27 MHz ticks).
    private(set) var firstPCR: (packet: Int, ticks: Int64)?
    private(set) var lastPCR: (packet: Int, ticks: Int64)?
    /// Packets with random_access_indicator set.
    private(set) var randomAccessPoints = 0
    /// PAT packets seen.
    private(set) var patCount = 0
    /// Whether every random access point came right after a PAT and a PMT.
    private(set) var everyKeyFrameFollowsTables = true

    private var counters: [UInt16: UInt8] = [:]
    private var lastPTS: [UInt16: Int64] = [:]
    private var previousPIDs: [UInt16] = []

    /// Reads whole packets from `bytes` (which must start on a packet boundary).
    mutating func feed(_ bytes: [UInt8]) {
        var at = 0
        while at + 188 <= bytes.count {
            check(Array(bytes[at..<(at + 188)]))
            at += 188
        }
    }

    private mutating func check(_ p: [UInt8]) {
        packets += 1
        guard p[0] == 0x47 else {
            syncErrors += 1
            return
        }
        let pid = UInt16(p[1] & 0x1F) << 8 | UInt16(p[2])
        let hasAdaptation = p[3] & 0x20 != 0
        let hasPayload = p[3] & 0x10 != 0
        let counter = p[3] & 0x0F
        if pid != 0x1FFF {
            if let last = counters[pid] {
                let expected = hasPayload ? (last + 1) & 0x0F : last
                if counter != expected { continuityErrors += 1 }
            }
            counters[pid] = counter
        }
        if pid == 0 { patCount += 1 }
        var payload = 4
        if hasAdaptation, p[4] > 0 {
            payload = 5 + Int(p[4])
            let flags = p[5]
            if flags & 0x40 != 0 {
                randomAccessPoints += 1
                if previousPIDs.suffix(2) != [0, 0x1000] { everyKeyFrameFollowsTables = false }
            }
            if flags & 0x10 != 0 {
                let base = Int64(p[6]) << 25 | Int64(p[7]) << 17 | Int64(p[8]) << 9 | Int64(p[9]) << 1 | Int64(p[10] >> 7)
                let ticks = base * 300 + (Int64(p[10] & 1) << 8 | Int64(p[11]))
                if let last = lastPCR {
                    if ticks <= last.ticks { pcrRegressions += 1 }
                    largestPCRGap = max(largestPCRGap, ticks - last.ticks)
                }
                if firstPCR == nil { firstPCR = (packets, ticks) }
                lastPCR = (packets, ticks)
            }
        } else if hasAdaptation {
            payload = 5
        }
        if p[1] & 0x40 != 0, hasPayload, payload + 14 <= 188, p[payload] == 0, p[payload + 1] == 0,
           p[payload + 2] == 1, p[payload + 7] & 0x80 != 0, pid >= 0x20 {
            let q = payload + 9
            let pts = Int64((p[q] >> 1) & 7) << 30 | Int64(p[q + 1]) << 22 | Int64(p[q + 2] >> 1) << 15
                | Int64(p[q + 3]) << 7 | Int64(p[q + 4] >> 1)
            if let last = lastPTS[pid], pts <= last { ptsRegressions += 1 }
            lastPTS[pid] = pts
        }
        previousPIDs.append(pid)
        if previousPIDs.count > 2 { previousPIDs.removeFirst() }
    }

    /// Bitrate from the first to the last PCR, in bits per second.
    var bitsPerSecondFromPCR: Double? {
        guard let first = firstPCR, let last = lastPCR, last.ticks > first.ticks else { return nil }
        return Double((last.packet - first.packet) * 188 * 8) / (Double(last.ticks - first.ticks) / 27_000_000)
    }
}
