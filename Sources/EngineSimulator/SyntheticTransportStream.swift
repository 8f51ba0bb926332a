/// A generator of structurally valid MPEG-TS at an exact constant bitrate, needing no external tool.
///
/// The stream has one program: H.264 video (stream_type 0x1B) on PID 0x100,
/// which also carries the PCR, and AAC audio (stream_type 0x0F) on PID 0x101,
/// both at 25 frames a second. Every second starts with PAT and PMT followed by
/// a key frame whose first packet has random_access_indicator set. The PCR comes
/// at least every 40 ms and follows the packet position exactly, so the
/// bitrate measured from it is the requested one. Payloads are filler (an access
/// unit delimiter and a filler-data NAL unit for video, zeros for audio): the
/// stream is well formed, not decodable.
public enum SyntheticTransportStream {
    /// PID of the program map table.
    public static let programMapPID: UInt16 = 0x1000
    /// PID of the video elementary stream, which also carries the PCR.
    public static let videoPID: UInt16 = 0x100
    /// PID of the audio elementary stream.
    public static let audioPID: UInt16 = 0x101
    /// Video frames (and audio PES packets) per second.
    public static let framesPerSecond = 25
    /// Lowest bitrate the layout fits in: PSI, audio and video in every 40 ms slot.
    public static let minimumBitsPerSecond = 200_000
    /// Highest bitrate accepted, to keep one loop's memory bounded.
    public static let maximumBitsPerSecond = 400_000_000

    /// PCR of the first packet: one second, as muxers usually start above zero.
    private static let firstPCR: Int64 = 27_000_000
    /// PTS of the first frame: 0.7 s after the first PCR, room for the decoder buffer.
    private static let firstPTS: Int64 = 153_000

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
        let audioPacketsPerSlot: Int
        var counters: [UInt16: UInt8] = [:]

        init(bitsPerSecond: Int, seconds: Int) {
            let size = TransportPacket.size
            self.seconds = seconds
            packetCount = Int((Double(bitsPerSecond) * Double(seconds) / Double(8 * size)).rounded())
            slotCount = framesPerSecond * seconds
            let audioBitsPerSecond = min(bitsPerSecond / 20, 128_000)
            audioPacketsPerSlot = max(
                1, Int((Double(audioBitsPerSecond) / Double(framesPerSecond) / Double(8 * 184)).rounded()))
            bytes = [UInt8](repeating: 0xFF, count: packetCount * size)
        }

        mutating func writeAll() {
            for slot in 0..<slotCount {
                var index = slot * packetCount / slotCount
                let end = (slot + 1) * packetCount / slotCount
                let keyFrame = slot % framesPerSecond == 0
                if keyFrame {
                    writePAT(index)
                    writePMT(index + 1)
                    index += 2
                }
                let pts = firstPTS + Int64(slot) * Int64(90_000 / framesPerSecond)
                let videoPackets = end - index - audioPacketsPerSlot
                writeVideoFrame(from: index, count: videoPackets, pts: pts, keyFrame: keyFrame)
                writeAudioFrame(from: index + videoPackets, count: audioPacketsPerSlot, pts: pts)
            }
        }

        /// PCR of packet `index`: exactly proportional to its position, so the rate is constant.
        func pcr(ofPacket index: Int) -> Int64 {
            firstPCR + Int64(index) * Int64(seconds) * 27_000_000 / Int64(packetCount)
        }

        /// Writes the 4-byte header and returns the offset of the packet's first byte.
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
                0x0F, 0xE0 | UInt8(audio >> 8), UInt8(audio & 0xFF), 0xF0, 0x00, // AAC (ADTS)
            ])
        }

        /// One video access unit over `count` packets: PCR on the first and middle packets.
        mutating func writeVideoFrame(from first: Int, count: Int, pts: Int64, keyFrame: Bool) {
            let withPCR: Set<Int> = count >= 3 ? [0, count / 2] : [0]
            let capacity = (0..<count).reduce(0) { $0 + (withPCR.contains($1) ? 176 : 184) }
            var unit: [UInt8] = [0x00, 0x00, 0x01, 0xE0, 0x00, 0x00, 0x80, 0x80, 0x05, 0x21, 0, 0, 0, 0]
            unit.withUnsafeMutableBytes { TransportPacket.writeTimestamp($0, 9, pts) }
            unit += [0x00, 0x00, 0x00, 0x01, 0x09, 0xF0]   // access unit delimiter
            unit += [0x00, 0x00, 0x00, 0x01, 0x0C]         // filler data NAL unit …
            unit += [UInt8](repeating: 0xFF, count: capacity - unit.count - 1)
            unit.append(0x80)                              // … and its rbsp stop bit
            var taken = 0
            for packet in 0..<count {
                let pcrHere = withPCR.contains(packet)
                let start = writeHeader(first + packet, pid: videoPID, startsUnit: packet == 0, adaptation: pcrHere)
                var payload = start + 4
                if pcrHere {
                    bytes[start + 4] = 7
                    bytes[start + 5] = 0x10 | (keyFrame && packet == 0 ? 0x40 : 0)
                    let clock = pcr(ofPacket: first + packet)
                    bytes.withUnsafeMutableBytes { TransportPacket.writePCR($0, start + 6, ticks27MHz: clock) }
                    payload += 8
                }
                let room = start + TransportPacket.size - payload
                bytes.replaceSubrange(payload..<(payload + room), with: unit[taken..<(taken + room)])
                taken += room
            }
        }

        /// One audio PES packet of zeros that fills exactly `count` packets.
        mutating func writeAudioFrame(from first: Int, count: Int, pts: Int64) {
            let length = count * 184 - 6
            var unit = [UInt8](repeating: 0, count: count * 184)
            unit.replaceSubrange(0..<9, with: [0x00, 0x00, 0x01, 0xC0, UInt8(length >> 8), UInt8(length & 0xFF),
                                               0x80, 0x80, 0x05])
            unit[9] = 0x21
            unit.withUnsafeMutableBytes { TransportPacket.writeTimestamp($0, 9, pts) }
            for packet in 0..<count {
                let at = writeHeader(first + packet, pid: audioPID, startsUnit: packet == 0, adaptation: false)
                bytes.replaceSubrange((at + 4)..<(at + 188), with: unit[(packet * 184)..<(packet * 184 + 184)])
            }
        }
    }
}
