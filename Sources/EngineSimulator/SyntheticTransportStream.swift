/// A generator of valid, decodable MPEG-TS at an exact constant bitrate, needing no external tool.
///
/// The stream has one program: H.264 video (stream_type 0x1B) on PID 0x100, which also
/// carries the PCR, at 25 frames a second, and MPEG-1 Layer II audio (stream_type 0x03) on
/// PID 0x101. Every second starts with PAT and PMT followed by a key frame (IDR, with SPS and
/// PPS) whose first packet has random_access_indicator set. The PCR comes at least every
/// 40 ms and follows the packet position exactly, so the bitrate measured from it is the
/// requested one. The picture is a still gray 256x144 frame and the audio is silence (see
/// `SyntheticElementaryStreams`); H.264 filler-data NAL units bring the video up to the bitrate.
public enum SyntheticTransportStream {
    /// PID of the program map table.
    public static let programMapPID: UInt16 = 0x1000
    /// PID of the video elementary stream, which also carries the PCR.
    public static let videoPID: UInt16 = 0x100
    /// PID of the audio elementary stream.
    public static let audioPID: UInt16 = 0x101
    /// Video frames per second (one 40 ms slot of packets per frame).
    public static let framesPerSecond = 25
    /// Lowest bitrate the layout fits in: PSI, audio and a key frame in one 40 ms slot.
    public static let minimumBitsPerSecond = 400_000
    /// Highest bitrate accepted, to keep one loop's memory bounded.
    public static let maximumBitsPerSecond = 400_000_000

    /// PCR of the first packet: one second, as muxers usually start above zero.
    private static let firstPCR: Int64 = 27_000_000
    /// PTS of the first frame: 0.7 s after the first PCR, room for the decoder buffer.
    private static let firstPTS: Int64 = 153_000
    /// 90 kHz ticks per video frame.
    private static let frameTicks = Int64(90_000 / framesPerSecond)

    /// Makes `seconds` of stream at `bitsPerSecond`; its first packets are PAT, PMT and a key frame.
    ///
    /// - Throws: `EngineSimulatorError.syntheticBitrateOutOfRange` outside
    ///   `minimumBitsPerSecond...maximumBitsPerSecond`, or `.syntheticDurationOutOfRange`
    ///   outside 1...600 seconds.
    public static func make(bitsPerSecond: Int, seconds: Int) throws(EngineSimulatorError) -> [UInt8] {
        guard (minimumBitsPerSecond...maximumBitsPerSecond).contains(bitsPerSecond) else {
            throw .syntheticBitrateOutOfRange(
                bitsPerSecond, minimum: minimumBitsPerSecond, maximum: maximumBitsPerSecond)
        }
        guard (1...600).contains(seconds) else { throw .syntheticDurationOutOfRange(seconds) }
        var writer = Writer(bitsPerSecond: bitsPerSecond, seconds: seconds)
        writer.writeAll()
        return writer.bytes
    }

    /// Lays packets out slot by slot (one slot = one video frame = 40 ms).
    private struct Writer {
        var bytes: [UInt8]
        let packetCount: Int
        let seconds: Int
        let slotCount: Int
        let audioFrameCount: Int
        var counters: [UInt16: UInt8] = [:]

        init(bitsPerSecond: Int, seconds: Int) {
            let size = TransportPacket.size
            self.seconds = seconds
            packetCount = Int((Double(bitsPerSecond) * Double(seconds) / Double(8 * size)).rounded())
            slotCount = framesPerSecond * seconds
            // Only whole audio frames inside the loop: a short gap at the seam, never an overlap.
            audioFrameCount = Int(Int64(seconds) * 90_000 / SyntheticElementaryStreams.audioFrameTicks)
            bytes = [UInt8](repeating: 0xFF, count: packetCount * size)
        }

        mutating func writeAll() {
            var nextAudioFrame = 0
            for slot in 0..<slotCount {
                var index = slot * packetCount / slotCount
                let end = (slot + 1) * packetCount / slotCount
                let keyFrame = slot % framesPerSecond == 0
                if keyFrame {
                    writePAT(index)
                    writePMT(index + 1)
                    index += 2
                }
                let pts = firstPTS + Int64(slot) * frameTicks

                // The audio frames that start within this slot, in one PES packet.
                let slotEnd = Int64(slot + 1) * frameTicks
                var audio: [UInt8] = []
                let audioPTS = firstPTS + Int64(nextAudioFrame) * SyntheticElementaryStreams.audioFrameTicks
                while nextAudioFrame < audioFrameCount,
                      Int64(nextAudioFrame) * SyntheticElementaryStreams.audioFrameTicks < slotEnd {
                    audio += SyntheticElementaryStreams.silentAudioFrame
                    nextAudioFrame += 1
                }
                let audioPES = audio.isEmpty ? [] : Self.pesPacket(streamID: 0xC0, pts: audioPTS, payload: audio,
                                                                   bounded: true)
                let audioPackets = (audioPES.count + 183) / 184

                let videoPackets = end - index - audioPackets
                let pcrPackets: Set<Int> = videoPackets >= 3 ? [0, videoPackets / 2] : [0]
                let capacity = videoPackets * 184 - pcrPackets.count * 8
                var unit = SyntheticElementaryStreams.accessUnitDelimiter
                if keyFrame {
                    unit += SyntheticElementaryStreams.sequenceParameterSet
                    unit += SyntheticElementaryStreams.pictureParameterSet
                    unit += SyntheticElementaryStreams.idrSlice(idrPictureID: UInt32(slot / framesPerSecond % 2))
                } else {
                    unit += SyntheticElementaryStreams.skippedSlice(frameNumber: slot % framesPerSecond)
                }
                // Fill the slot with a filler NAL unit; a few bytes short of one are stuffed in TS instead.
                let slack = capacity - 14 - unit.count
                precondition(slack >= 0, "a \(seconds) s loop of \(packetCount) packets has no room for a frame")
                if slack >= 6 { unit += SyntheticElementaryStreams.filler(count: slack) }
                let videoPES = Self.pesPacket(streamID: 0xE0, pts: pts, payload: unit, bounded: false)
                writePES(videoPES, pid: videoPID, from: index, count: videoPackets, pcrPackets: pcrPackets,
                         randomAccess: keyFrame)
                if !audioPES.isEmpty {
                    writePES(audioPES, pid: audioPID, from: index + videoPackets, count: audioPackets,
                             pcrPackets: [], randomAccess: false)
                }
            }
        }

        /// A PES packet with a PTS; video may leave PES_packet_length 0 (unbounded).
        static func pesPacket(streamID: UInt8, pts: Int64, payload: [UInt8], bounded: Bool) -> [UInt8] {
            let length = bounded ? payload.count + 8 : 0
            var header: [UInt8] = [0x00, 0x00, 0x01, streamID, UInt8(length >> 8), UInt8(length & 0xFF),
                                   0x80, 0x80, 0x05, 0x21, 0, 0, 0, 0]
            header.withUnsafeMutableBytes { TransportPacket.writeTimestamp($0, 9, pts) }
            return header + payload
        }

        /// PCR of packet `index`: exactly proportional to its position, so the rate is constant.
        func pcr(ofPacket index: Int) -> Int64 {
            firstPCR + Int64(index) * Int64(seconds) * 27_000_000 / Int64(packetCount)
        }

        /// Writes a 4-byte header and returns the offset of the packet's first byte.
        mutating func writeHeader(_ index: Int, pid: UInt16, startsUnit: Bool, adaptation: Bool) -> Int {
            let at = index * TransportPacket.size
            let counter = (counters[pid, default: 0x0F] &+ 1) & 0x0F
            counters[pid] = counter
            bytes[at] = TransportPacket.syncByte
            bytes[at + 1] = (startsUnit ? 0x40 : 0) | UInt8(pid >> 8)
            bytes[at + 2] = UInt8(pid & 0xFF)
            bytes[at + 3] = (adaptation ? 0x30 : 0x10) | counter
            return at
        }

        /// Spreads a PES packet over `count` packets: a PCR where asked, random_access_indicator
        /// on the first if asked, and adaptation-field stuffing in the last for what is left over.
        mutating func writePES(
            _ pes: [UInt8], pid: UInt16, from first: Int, count: Int, pcrPackets: Set<Int>, randomAccess: Bool
        ) {
            var taken = 0
            for packet in 0..<count {
                let hasPCR = pcrPackets.contains(packet)
                let flagged = hasPCR || (randomAccess && packet == 0)
                var room = 184 - (hasPCR ? 8 : flagged ? 2 : 0)
                let remaining = pes.count - taken
                let stuffing = packet == count - 1 ? room - remaining : 0
                room -= stuffing
                let hasAdaptation = flagged || stuffing > 0
                let start = writeHeader(first + packet, pid: pid, startsUnit: packet == 0, adaptation: hasAdaptation)
                var payload = start + 4
                if hasAdaptation {
                    // Adaptation field: length, flags, optional PCR, then 0xFF stuffing.
                    let fieldLength = (hasPCR ? 7 : flagged ? 1 : 0) + stuffing - (flagged ? 0 : 1)
                    bytes[payload] = UInt8(fieldLength)
                    if fieldLength > 0 {
                        bytes[payload + 1] = (hasPCR ? 0x10 : 0) | (randomAccess && packet == 0 ? 0x40 : 0)
                    }
                    if hasPCR {
                        let clock = pcr(ofPacket: first + packet)
                        bytes.withUnsafeMutableBytes { TransportPacket.writePCR($0, payload + 2, ticks27MHz: clock) }
                    }
                    payload += 1 + fieldLength
                }
                bytes.replaceSubrange(payload..<(payload + room), with: pes[taken..<(taken + room)])
                taken += room
            }
            precondition(taken == pes.count, "PES of \(pes.count) bytes does not fit \(count) packets")
        }

        /// Writes a PSI section (pointer field, section, CRC, 0xFF stuffing) into one packet.
        mutating func writeSection(_ index: Int, pid: UInt16, _ section: [UInt8]) {
            let at = writeHeader(index, pid: pid, startsUnit: true, adaptation: false)
            let crc = TransportPacket.crc32(section[...])
            let body = [0x00] + section + [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: crc >> $0) }
            bytes.replaceSubrange((at + 4)..<(at + 4 + body.count), with: body)
        }

        mutating func writePAT(_ index: Int) {
            let pmt = programMapPID
            writeSection(index, pid: 0, [
                0x00, 0xB0, 13,           // table_id PAT, section_length
                0x00, 0x01, 0xC1, 0, 0,   // transport_stream_id 1, version 0 current, section 0 of 0
                0x00, 0x01, 0xE0 | UInt8(pmt >> 8), UInt8(pmt & 0xFF), // program 1 → PMT PID
            ])
        }

        mutating func writePMT(_ index: Int) {
            let video = videoPID, audio = audioPID
            writeSection(index, pid: programMapPID, [
                0x02, 0xB0, 23,           // table_id PMT, section_length
                0x00, 0x01, 0xC1, 0, 0,   // program 1, version 0 current, section 0 of 0
                0xE0 | UInt8(video >> 8), UInt8(video & 0xFF), 0xF0, 0x00, // PCR PID, no program info
                0x1B, 0xE0 | UInt8(video >> 8), UInt8(video & 0xFF), 0xF0, 0x00, // H.264
                0x03, 0xE0 | UInt8(audio >> 8), UInt8(audio & 0xFF), 0xF0, 0x00, // MPEG-1 audio
            ])
        }
    }
}
