import Testing
@testable import StreamFacts

/// PAT and PMT sections reach the collector split across TS packets, as large
/// program tables are; the split must be undone, and a lost packet must not be.
@Suite struct ProgramTableAssemblyTests {
    static func withCRC(_ section: [UInt8]) -> [UInt8] {
        let crc = section.withUnsafeBytes { CRC32MPEG.checksum($0) }
        return section + [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
    }

    static func pat(pmtPID: UInt16) -> [UInt8] {
        withCRC([0x00, 0xB0, 13, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xE0 | UInt8(pmtPID >> 8), UInt8(pmtPID & 0xFF)])
    }

    /// A PMT long enough to need four packets (629 bytes): many subtitle streams before the audio.
    static func longPMT() -> [UInt8] {
        var streams: [(type: UInt8, pid: UInt16, descriptors: [UInt8])] = [(0x1B, 0x101, [])]
        for index in 0..<40 { streams.append((0x06, 0x200 + UInt16(index), [0x59, 0x08, 0x65, 0x6E, 0x67, 0x10, 0x00, 0x01, 0x00, 0x01])) }
        streams.append((0x06, 0x102, [0x6A, 0x01, 0x00]))
        return PMTTests.section(streams: streams, pcrPID: 0x101)
    }

    /// TS packets of one PID carrying `section`, the first with `pointer` stuffing bytes before it.
    static func packets(pid: UInt16, section: [UInt8], firstContinuity: UInt8 = 0, pointer: Int = 0) -> [[UInt8]] {
        var payload = [UInt8(pointer)] + [UInt8](repeating: 0xAB, count: pointer) + section
        var packets: [[UInt8]] = []
        var continuity = firstContinuity
        while !payload.isEmpty {
            var packet: [UInt8] = [0x47, (packets.isEmpty ? 0x40 : 0x00) | UInt8(pid >> 8), UInt8(pid & 0xFF), 0x10 | continuity]
            let chunk = payload.prefix(184)
            packet += chunk
            packet += [UInt8](repeating: 0xFF, count: 188 - packet.count)
            payload.removeFirst(chunk.count)
            packets.append(packet)
            continuity = (continuity + 1) & 0x0F
        }
        return packets
    }

    static func feed(_ packets: [[UInt8]]) -> StreamFactsCollector {
        let collector = StreamFactsCollector()
        let bytes = packets.flatMap { $0 }
        bytes.withUnsafeBytes { collector.consume($0) }
        return collector
    }

    @Test func aPMTSpanningFourPacketsIsReassembled() {
        let pmt = Self.packets(pid: 0x100, section: Self.longPMT(), firstContinuity: 14, pointer: 5)
        #expect(pmt.count == 4)
        let collector = Self.feed(Self.packets(pid: 0, section: Self.pat(pmtPID: 0x100)) + pmt)
        #expect(collector.facts.videoCodec == .h264)
        #expect(collector.facts.audioCodec == .ac3, "the AC-3 stream is listed after 40 subtitle streams")
    }

    @Test func aLostMiddlePacketDropsTheSection() {
        var pmt = Self.packets(pid: 0x100, section: Self.longPMT())
        pmt.remove(at: 1)
        let collector = Self.feed(Self.packets(pid: 0, section: Self.pat(pmtPID: 0x100)) + pmt)
        #expect(collector.facts == StreamFacts())
    }

    @Test func aSectionWithADamagedByteFailsItsCRC() {
        var pmt = Self.packets(pid: 0x100, section: Self.longPMT())
        pmt[1][100] ^= 0x10
        var pat = Self.packets(pid: 0, section: Self.pat(pmtPID: 0x100))
        #expect(Self.feed(pat + pmt).facts == StreamFacts())
        pat[0][12] ^= 0x01 // the PMT PID in the PAT
        #expect(Self.feed(pat + Self.packets(pid: 0x100, section: Self.longPMT())).facts == StreamFacts())
    }

    @Test func aPMTBeforeItsPATIsPickedUpWhenItRepeats() {
        let pmt = Self.packets(pid: 0x100, section: Self.longPMT())
        let again = Self.packets(pid: 0x100, section: Self.longPMT(), firstContinuity: 3)
        let collector = Self.feed(pmt + Self.packets(pid: 0, section: Self.pat(pmtPID: 0x100)) + again)
        #expect(collector.facts.videoCodec == .h264)
    }
}
