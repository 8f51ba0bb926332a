/// One loop of MPEG-TS media, analysed once so it can be played end to end,
/// forever, as a single continuous stream.
///
/// Loop `n` is the media with every continuity counter advanced so the seam
/// has no jump on any PID, and every PCR, PTS and DTS moved forward by
/// `n × durationTicks`, so timestamps keep rising across seams.
struct MediaLoop: Sendable {
    /// What the patches of one packet are, worked out at load time so rendering is table-driven.
    private struct PacketPatch: Sendable {
        /// How far the packet's continuity counter moves per loop; `nil` leaves it (null packets).
        var continuityStep: UInt8?
        /// Offset of the PCR inside the packet, if it carries one.
        var pcr: UInt8?
        /// Offset of the PES header's PTS inside the packet, if it carries one.
        var pts: UInt8?
        /// Offset of the PES header's DTS inside the packet, if it carries one.
        var dts: UInt8?
    }

    /// The media, whole 188-byte packets.
    let bytes: [UInt8]
    /// Packets in one loop.
    let packetCount: Int
    /// Length of one loop in 90 kHz ticks: how far timestamps move per loop.
    let durationTicks: Int64
    /// Delivery rate that keeps the stream in step with its timestamps.
    let bytesPerSecond: Double
    private let patches: [PacketPatch]

    /// Length of one loop in seconds.
    var durationSeconds: Double { Double(durationTicks) / 90_000 }

    /// Analyses `bytes`, which must be whole transport packets with at least two PCRs.
    ///
    /// - Parameters:
    ///   - origin: names the media in errors (a path, or "synthetic").
    ///   - knownDurationTicks: the loop length, when the maker knows it exactly; otherwise it
    ///     is derived from the PCR and the PES timestamps.
    init(bytes: [UInt8], origin: String, knownDurationTicks: Int64? = nil) throws(EngineSimulatorError) {
        let size = TransportPacket.size
        guard !bytes.isEmpty else {
            throw .mediaNotTransportStream(path: origin, reason: "the file is empty")
        }
        guard bytes.count % size == 0 else {
            throw .mediaNotTransportStream(
                path: origin, reason: "its size \(bytes.count) is not a multiple of 188 bytes")
        }
        let count = bytes.count / size
        if let bad = (0..<count).first(where: { bytes[$0 * size] != TransportPacket.syncByte }) {
            throw .mediaNotTransportStream(
                path: origin, reason: "packet \(bad) (byte \(bad * size)) does not start with the sync byte 0x47")
        }
        let analysis = bytes.withUnsafeBytes { Self.analyse($0, packetCount: count) }
        guard let clock = analysis.clock else { throw .mediaWithoutClock(path: origin) }

        // Loop length: the longer of what the PCR says (bytes at the PCR's rate)
        // and what the PES timestamps span, so no timestamp ever goes backwards at
        // the seam; a hair under a whole tick is float noise, not a longer loop.
        let pcrTicks = Double(bytes.count) / clock.bytesPerSecond * 90_000
        let ticks = max(pcrTicks, analysis.timestampSpanTicks)
        let durationTicks = knownDurationTicks ?? max(1, Int64((ticks - 0.01).rounded(.up)))

        self.bytes = bytes
        self.packetCount = count
        self.durationTicks = durationTicks
        self.bytesPerSecond = Double(bytes.count) * 90_000 / Double(durationTicks)
        self.patches = analysis.patches
    }

    /// Appends packets `first ..< first + count` of the endless stream to `buffer`.
    func render(packetsFrom first: Int64, count: Int, into buffer: inout [UInt8]) {
        let size = TransportPacket.size
        for n in first..<(first + Int64(count)) {
            let loop = n / Int64(packetCount)
            let index = Int(n % Int64(packetCount))
            let start = buffer.count
            buffer.append(contentsOf: bytes[(index * size)..<(index * size + size)])
            guard loop > 0 else { continue }
            let patch = patches[index]
            let shift = (loop * durationTicks) % TransportPacket.timestampModulus
            buffer.withUnsafeMutableBytes { p in
                if let step = patch.continuityStep {
                    let counter = (Int64(p[start + 3] & 0x0F) + loop * Int64(step)) & 0x0F
                    p[start + 3] = (p[start + 3] & 0xF0) | UInt8(counter)
                }
                if let pcr = patch.pcr { TransportPacket.shiftPCR(p, start + Int(pcr), by: shift) }
                if let pts = patch.pts { TransportPacket.shiftTimestamp(p, start + Int(pts), by: shift) }
                if let dts = patch.dts { TransportPacket.shiftTimestamp(p, start + Int(dts), by: shift) }
            }
        }
    }

    // MARK: Analysis

    private struct Clock {
        var bytesPerSecond: Double
    }

    private struct Analysis {
        var patches: [PacketPatch]
        var clock: Clock?
        var timestampSpanTicks: Double
    }

    /// Per-PID facts gathered in one pass.
    private struct PIDTrack {
        var firstCounter: UInt8
        var firstHasPayload: Bool
        var lastCounter: UInt8
        var firstTimestamp: Int64?
        var lastTimestamp: Int64?
        var timestampCount = 0
    }

    private static func analyse(_ p: UnsafeRawBufferPointer, packetCount: Int) -> Analysis {
        let size = TransportPacket.size
        let tablePIDs = programMapPIDs(p, packetCount: packetCount).union([0])
        var tracks: [UInt16: PIDTrack] = [:]
        var patches = [PacketPatch](repeating: PacketPatch(), count: packetCount)
        var pcrPID: UInt16?
        var firstPCR: (index: Int, ticks: Int64)?
        var lastPCR: (index: Int, ticks: Int64)?

        for index in 0..<packetCount {
            let at = index * size
            let pid = TransportPacket.pid(p, at)
            let counter = TransportPacket.continuityCounter(p, at)
            if pid != TransportPacket.nullPID {
                if tracks[pid] == nil {
                    tracks[pid] = PIDTrack(
                        firstCounter: counter, firstHasPayload: TransportPacket.hasPayload(p, at),
                        lastCounter: counter)
                }
                tracks[pid]!.lastCounter = counter
            }
            if let offset = TransportPacket.pcrOffset(p, at) {
                patches[index].pcr = UInt8(offset)
                if pcrPID == nil { pcrPID = pid }
                if pid == pcrPID {
                    let ticks = TransportPacket.readPCR(p, at + offset)
                    if firstPCR == nil { firstPCR = (index, ticks) }
                    lastPCR = (index, ticks)
                }
            }
            if !tablePIDs.contains(pid), let offsets = TransportPacket.pesTimestampOffsets(p, at) {
                patches[index].pts = offsets.pts.map { UInt8($0) }
                patches[index].dts = offsets.dts.map { UInt8($0) }
                // Decode order is DTS order; a PES without DTS decodes at its PTS.
                if let decode = offsets.dts ?? offsets.pts {
                    let ts = TransportPacket.readTimestamp(p, at + decode)
                    if tracks[pid]!.firstTimestamp == nil { tracks[pid]!.firstTimestamp = ts }
                    tracks[pid]!.lastTimestamp = ts
                    tracks[pid]!.timestampCount += 1
                }
            }
        }

        for index in 0..<packetCount {
            let pid = TransportPacket.pid(p, index * size)
            guard let track = tracks[pid] else { continue }
            // The first packet of loop n must follow the last packet of loop n-1.
            let increment: UInt8 = track.firstHasPayload ? 1 : 0
            patches[index].continuityStep = (track.lastCounter &+ increment &- track.firstCounter) & 0x0F
        }

        var clock: Clock?
        if let first = firstPCR, let last = lastPCR, last.index > first.index {
            let wrap = TransportPacket.timestampModulus * 300
            let ticks = ((last.ticks - first.ticks) % wrap + wrap) % wrap
            if ticks > 0 {
                clock = Clock(bytesPerSecond: Double((last.index - first.index) * size) * 27_000_000 / Double(ticks))
            }
        }

        // A stream's span is first-to-last decode time plus one average frame.
        var span = 0.0
        for track in tracks.values {
            guard let first = track.firstTimestamp, let last = track.lastTimestamp, track.timestampCount > 1 else {
                continue
            }
            let modulus = TransportPacket.timestampModulus
            let ticks = Double(((last - first) % modulus + modulus) % modulus)
            span = max(span, ticks + ticks / Double(track.timestampCount - 1))
        }
        return Analysis(patches: patches, clock: clock, timestampSpanTicks: span)
    }

    /// PIDs of the program map tables named by the first PAT section in the media.
    private static func programMapPIDs(_ p: UnsafeRawBufferPointer, packetCount: Int) -> Set<UInt16> {
        let size = TransportPacket.size
        for index in 0..<packetCount {
            let at = index * size
            guard TransportPacket.pid(p, at) == 0, TransportPacket.startsPayloadUnit(p, at),
                  let payload = TransportPacket.payloadOffset(p, at) else { continue }
            let section = at + payload + 1 + Int(p[at + payload])
            guard section + 8 <= at + size, p[section] == 0x00 else { continue }
            let length = Int(p[section + 1] & 0x0F) << 8 | Int(p[section + 2])
            // Program loop: after the 5 bytes that follow section_length, up to the CRC.
            let end = min(section + 3 + length - 4, at + size)
            var pids: Set<UInt16> = []
            var entry = section + 8
            while entry + 4 <= end {
                let program = UInt16(p[entry]) << 8 | UInt16(p[entry + 1])
                if program != 0 { pids.insert(UInt16(p[entry + 2] & 0x1F) << 8 | UInt16(p[entry + 3])) }
                entry += 4
            }
            return pids
        }
        return []
    }
}
