/// Reads packet headers as they pass, never payloads beyond PAT/PMT: finds join
/// points, counts continuity errors, and measures the bitrate from the PCR.
///
/// A join point is where a new player can start and show a picture at once: the
/// PAT that precedes (with a PMT in between) the first packet of a video key
/// frame. Key frames are recognised by the adaptation field's
/// random_access_indicator on the video PID; a stream that never sets it falls
/// back to joining at each PAT, which players also accept.
public final class TSInspector {
    /// Last continuity counter per PID; 0xFF = none seen yet. Allocated once per hub.
    private var lastCC: [UInt8] = [UInt8](repeating: 0xFF, count: 8192)
    private var pmtPID: UInt16?
    private var videoPID: UInt16?
    private var pcrPID: UInt16?
    /// Offset of the newest PAT and whether a PMT followed it.
    private var lastPATOffset: UInt64?
    private var pmtSinceLastPAT = false
    private var sawRandomAccess = false
    private var window: (pcr: UInt64, offset: UInt64)?

    /// Continuity counter jumps seen (packets lost or duplicated upstream).
    public private(set) var continuityErrors: UInt64 = 0
    /// Stream bitrate in bits per second from the PCR; 0 until measured.
    public private(set) var bitsPerSecond: Int = 0
    /// Offset of the most recent join point, if any.
    public private(set) var latestJoinPoint: UInt64?
    /// Packets inspected.
    public private(set) var packets: UInt64 = 0
    /// Null packets (PID 0x1FFF) among them: stuffing the sender added.
    public private(set) var nullPackets: UInt64 = 0
    /// The newest PCR (27 MHz units) on the PCR PID, if any.
    public private(set) var lastPCR: UInt64?
    /// Called with the offset of each join point as it is found, and whether it is
    /// a key frame's (false: a PAT, before any key frame was flagged); set once,
    /// before the first `inspect`.
    public var joinPointFound: ((UInt64, Bool) -> Void)?
    /// Called with the offset of a PCR that does not continue the one before it
    /// (it goes back, leaps more than `maxPCRStep`, is flagged discontinuous, or
    /// is the first after `resetContinuity`): a loop seam or a new engine session.
    public var timelineBreakFound: ((UInt64) -> Void)?
    /// Seconds of PCR progress since the first PCR, summed over continuous runs
    /// only, so it never jumps: the stream's own clock for segment durations.
    public private(set) var streamSeconds: Double = 0
    /// PCR breaks seen (see `timelineBreakFound`).
    public private(set) var timelineBreaks: UInt64 = 0
    /// The PCR the stream clock last advanced to; nil before the first or after a reset.
    private var timelinePCR: UInt64?
    /// Set by `resetContinuity`: the next PCR starts a new timeline, whatever its value.
    private var timelineBreakPending = false
    /// PCRs are at most 100 ms apart (13818-1 2.7.2); a leap this large is a new timeline.
    static let maxPCRStep: UInt64 = 3 * 27_000_000

    public init() {}

    /// Inspects whole packets that will be stored at `offset` in the history.
    /// Returns true when a new join point was found in this run.
    @discardableResult
    public func inspect(_ run: UnsafeRawBufferPointer, at offset: UInt64) -> Bool {
        var found = false
        var i = 0
        while i + TSPacket.size <= run.count {
            if inspectPacket(UnsafeRawBufferPointer(rebasing: run[i..<(i + TSPacket.size)]), at: offset + UInt64(i)) {
                found = true
            }
            i += TSPacket.size
        }
        return found
    }

    /// Forgets continuity state, e.g. after a reconnect where a jump is expected.
    public func resetContinuity() {
        for i in lastCC.indices { lastCC[i] = 0xFF }
        window = nil
        // The new session's clock may or may not continue the old one; HLS players
        // are told it does not, which costs them a resync at worst.
        if timelinePCR != nil { timelineBreakPending = true }
        timelinePCR = nil
    }

    /// Whether the stream has shown a PCR, so `streamSeconds` means something.
    public var hasStreamClock: Bool { lastPCR != nil }

    private func inspectPacket(_ p: UnsafeRawBufferPointer, at offset: UInt64) -> Bool {
        packets &+= 1
        let pid = UInt16(p[1] & 0x1F) << 8 | UInt16(p[2])
        if pid == TSPacket.nullPID {
            nullPackets &+= 1
            return false
        }
        let unitStart = p[1] & 0x40 != 0
        let control = (p[3] >> 4) & 0x3
        let cc = p[3] & 0x0F
        let hasPayload = control & 0x1 != 0
        var discontinuity = false
        var randomAccess = false
        var payloadStart = 4
        if control & 0x2 != 0 {
            let length = Int(p[4])
            payloadStart = 5 + length
            if length > 0 {
                let flags = p[5]
                discontinuity = flags & 0x80 != 0
                randomAccess = flags & 0x40 != 0
                if flags & 0x10 != 0, length >= 7, pid == (pcrPID ?? pid) {
                    let base = UInt64(p[6]) << 25 | UInt64(p[7]) << 17 | UInt64(p[8]) << 9 | UInt64(p[9]) << 1 | UInt64(p[10] >> 7)
                    let ext = UInt64(p[10] & 0x1) << 8 | UInt64(p[11])
                    observePCR(base * 300 + ext, at: offset, discontinuity: discontinuity)
                }
            }
        }
        if hasPayload {
            let last = lastCC[Int(pid)]
            // A repeated counter is an allowed duplicate (13818-1 2.4.3.3); anything else is a loss.
            if last != 0xFF, !discontinuity, cc != (last &+ 1) & 0x0F, cc != last {
                continuityErrors &+= 1
            }
            lastCC[Int(pid)] = cc
        }
        guard unitStart, hasPayload, payloadStart < TSPacket.size else { return false }
        if pid == TSPacket.patPID {
            lastPATOffset = offset
            pmtSinceLastPAT = false
            parsePAT(p, payloadStart: payloadStart)
            if !sawRandomAccess {
                latestJoinPoint = offset
                joinPointFound?(offset, false)
                return true
            }
        } else if pid == pmtPID {
            pmtSinceLastPAT = true
            parsePMT(p, payloadStart: payloadStart)
        } else if randomAccess, pid == videoPID || videoPID == nil {
            sawRandomAccess = true
            // Start at the PAT before the key frame when a PMT came between, so the
            // player learns the program before the picture; otherwise at the key frame.
            if let pat = lastPATOffset, pmtSinceLastPAT, offset - pat <= 512 * 1024 {
                latestJoinPoint = pat
            } else {
                latestJoinPoint = offset
            }
            if let latestJoinPoint { joinPointFound?(latestJoinPoint, true) }
            return true
        }
        return false
    }

    private func parsePAT(_ p: UnsafeRawBufferPointer, payloadStart: Int) {
        let section = payloadStart + 1 + Int(p[payloadStart])
        // table_id(1) length(2) tsid(2) version(1) section(1) last(1), then 4-byte entries.
        guard section + 8 <= TSPacket.size, p[section] == 0x00 else { return }
        let length = Int(p[section + 1] & 0x0F) << 8 | Int(p[section + 2])
        var entry = section + 8
        let end = min(section + 3 + length - 4, TSPacket.size - 4)
        while entry + 4 <= end + 0 {
            let program = UInt16(p[entry]) << 8 | UInt16(p[entry + 1])
            let pid = UInt16(p[entry + 2] & 0x1F) << 8 | UInt16(p[entry + 3])
            if program != 0 {
                pmtPID = pid
                return
            }
            entry += 4
        }
    }

    private func parsePMT(_ p: UnsafeRawBufferPointer, payloadStart: Int) {
        let section = payloadStart + 1 + Int(p[payloadStart])
        guard section + 12 <= TSPacket.size, p[section] == 0x02 else { return }
        let length = Int(p[section + 1] & 0x0F) << 8 | Int(p[section + 2])
        pcrPID = UInt16(p[section + 8] & 0x1F) << 8 | UInt16(p[section + 9])
        let infoLength = Int(p[section + 10] & 0x0F) << 8 | Int(p[section + 11])
        var entry = section + 12 + infoLength
        let end = min(section + 3 + length - 4, TSPacket.size)
        while entry + 5 <= end {
            let streamType = p[entry]
            let pid = UInt16(p[entry + 1] & 0x1F) << 8 | UInt16(p[entry + 2])
            let esInfo = Int(p[entry + 3] & 0x0F) << 8 | Int(p[entry + 4])
            if TSInspector.isVideo(streamType) {
                videoPID = pid
                return
            }
            entry += 5 + esInfo
        }
    }

    /// MPEG-1/2, MPEG-4 part 2, H.264, HEVC, VC-1 and AVS stream types.
    private static func isVideo(_ streamType: UInt8) -> Bool {
        [0x01, 0x02, 0x10, 0x1B, 0x24, 0xEA, 0x42].contains(streamType)
    }

    private func observePCR(_ pcr: UInt64, at offset: UInt64, discontinuity: Bool) {
        lastPCR = pcr
        advanceStreamClock(pcr, at: offset, discontinuity: discontinuity)
        guard let start = window, !discontinuity, pcr > start.pcr else {
            window = (pcr, offset)
            return
        }
        let elapsed = Double(pcr - start.pcr) / 27_000_000
        if elapsed > 10 {
            // A jump (loop seam, engine restart): not a measurement.
            window = (pcr, offset)
        } else if elapsed >= 1 {
            bitsPerSecond = Int(Double(offset - start.offset) * 8 / elapsed)
            window = (pcr, offset)
        }
    }

    private func advanceStreamClock(_ pcr: UInt64, at offset: UInt64, discontinuity: Bool) {
        defer { timelinePCR = pcr }
        guard let previous = timelinePCR else {
            if timelineBreakPending {
                timelineBreakPending = false
                timelineBreaks &+= 1
                timelineBreakFound?(offset)
            }
            return
        }
        if discontinuity || pcr < previous || pcr - previous > TSInspector.maxPCRStep {
            timelineBreaks &+= 1
            timelineBreakFound?(offset)
        } else {
            streamSeconds += Double(pcr - previous) / 27_000_000
        }
    }
}
