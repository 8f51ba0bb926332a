import Foundation
import Testing
@testable import StreamFacts

@Suite struct BitReaderTests {
    @Test func readsFixedWidthFieldsAcrossByteBoundaries() throws {
        let bytes: [UInt8] = [0b1010_1100, 0b0101_0011, 0xFF, 0x00, 0x12, 0x34]
        try bytes.withUnsafeBytes { buffer throws in
            var reader = BitReader(buffer)
            #expect(try reader.bits(3) == 0b101)
            #expect(try reader.bits(7) == 0b0_1100_01)
            #expect(try reader.flag() == false)
            try reader.skip(5)
            #expect(try reader.bits(32) == 0xFF00_1234)
            #expect(reader.remaining == 0)
            #expect(throws: BitReader.Overrun.self) { try reader.bits(1) }
        }
    }

    @Test func exponentialGolombCodesRoundTrip() throws {
        var writer = BitWriter()
        let unsigned: [UInt64] = [0, 1, 2, 3, 7, 8, 255, 65_535, 4_294_967_294]
        let signed: [Int64] = [0, 1, -1, 2, -2, 100, -100, 32_767]
        unsigned.forEach { writer.ue($0) }
        signed.forEach { writer.se($0) }
        try writer.bytes.withUnsafeBytes { buffer throws in
            var reader = BitReader(buffer)
            for value in unsigned { #expect(try reader.ue() == UInt32(value)) }
            for value in signed { #expect(try reader.se() == Int32(value)) }
        }
    }

    @Test func knownExpGolombBitPatterns() throws {
        // 1 → 0, 010 → 1, 011 → 2, 00100 → 3; se: 010 → +1, 011 → -1.
        let bytes: [UInt8] = [0b1010_0110, 0b0100_0100, 0b1100_0000]
        try bytes.withUnsafeBytes { buffer throws in
            var reader = BitReader(buffer)
            #expect(try reader.ue() == 0)
            #expect(try reader.ue() == 1)
            #expect(try reader.ue() == 2)
            #expect(try reader.ue() == 3)
            #expect(try reader.se() == 1)
            #expect(try reader.se() == -1)
        }
    }

    @Test func runawayExpGolombPrefixIsAnOverrunNotATrap() {
        let zeros = [UInt8](repeating: 0, count: 16)
        zeros.withUnsafeBytes { buffer in
            var reader = BitReader(buffer)
            #expect(throws: BitReader.Overrun.self) { try reader.ue() }
        }
        [UInt8]([0x00]).withUnsafeBytes { buffer in
            var reader = BitReader(buffer)
            #expect(throws: BitReader.Overrun.self) { try reader.ue() }
        }
    }
}

@Suite struct RBSPTests {
    @Test func emulationPreventionBytesAreRemoved() {
        #expect(RBSP.unescape([0x67, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x00, 0x03]) == [0x67, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03])
        #expect(RBSP.unescape([0x00, 0x03, 0x00, 0x00, 0x03]) == [0x00, 0x03, 0x00, 0x00])
        #expect(RBSP.unescape([]) == [])
    }
}

@Suite struct H264SPSTests {
    /// A High-profile SPS as x264 writes it, built field by field.
    static func sps(
        profile: UInt64 = 100, widthInMBs: UInt64, heightInMapUnits: UInt64, frameMBsOnly: Bool = true,
        crop: (UInt64, UInt64, UInt64, UInt64)? = nil, timing: (UInt64, UInt64)? = nil, scalingMatrix: Bool = false, pocType: UInt64 = 0
    ) -> [UInt8] {
        var w = BitWriter()
        w.bits(0x67, 8)
        w.bits(profile, 8)
        w.bits(0, 8)
        w.bits(40, 8)
        w.ue(0)
        if profile == 100 {
            w.ue(1) // 4:2:0
            w.ue(0)
            w.ue(0)
            w.flag(false)
            w.flag(scalingMatrix)
            if scalingMatrix {
                for list in 0..<8 {
                    w.flag(list == 0)
                    if list == 0 { for _ in 0..<16 { w.se(3) } }
                }
            }
        }
        w.ue(0) // log2_max_frame_num_minus4
        w.ue(pocType)
        if pocType == 0 { w.ue(2) }
        if pocType == 1 {
            w.flag(false); w.se(-1); w.se(2); w.ue(2); w.se(1); w.se(-3)
        }
        w.ue(4)
        w.flag(false)
        w.ue(widthInMBs - 1)
        w.ue(heightInMapUnits - 1)
        w.flag(frameMBsOnly)
        if !frameMBsOnly { w.flag(true) }
        w.flag(true)
        w.flag(crop != nil)
        if let crop { w.ue(crop.0); w.ue(crop.1); w.ue(crop.2); w.ue(crop.3) }
        w.flag(true) // vui
        w.flag(true); w.bits(255, 8); w.bits(1, 16); w.bits(1, 16) // extended SAR
        w.flag(false)
        w.flag(true); w.bits(5, 3); w.flag(false); w.flag(true); w.bits(1, 8); w.bits(1, 8); w.bits(1, 8)
        w.flag(true); w.ue(0); w.ue(0)
        w.flag(timing != nil)
        if let timing { w.bits(timing.0, 32); w.bits(timing.1, 32); w.flag(true) }
        w.flag(false); w.flag(false); w.flag(false); w.flag(false)
        w.trailingBits()
        return w.bytes
    }

    /// Adds emulation-prevention bytes as an encoder would.
    static func escape(_ rbsp: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var zeros = 0
        for byte in rbsp {
            if zeros >= 2 && byte <= 3 { out.append(3); zeros = 0 }
            out.append(byte)
            zeros = byte == 0 ? zeros + 1 : 0
        }
        return out
    }

    @Test func progressive1080pIsCroppedFrom1088() throws {
        let sps = try #require(H264SPS(nalUnit: Self.escape(Self.sps(widthInMBs: 120, heightInMapUnits: 68, crop: (0, 0, 0, 4), timing: (1, 50)))))
        #expect(sps.width == 1920)
        #expect(sps.height == 1080)
        #expect(sps.isProgressive)
        #expect(sps.frameRate == 25)
        #expect(sps.profileIDC == 100)
    }

    @Test func interlacedMapUnitsAreFieldPairs() throws {
        // 34 map units of 32 lines, 4 × (2 × 2) lines cropped at the bottom.
        let sps = try #require(H264SPS(nalUnit: Self.escape(Self.sps(widthInMBs: 45, heightInMapUnits: 34, frameMBsOnly: false, crop: (0, 0, 0, 2), timing: (1001, 60000)))))
        #expect(sps.width == 720)
        #expect(sps.height == 1080)
        #expect(!sps.isProgressive)
        #expect(abs((sps.frameRate ?? 0) - 29.97) < 0.01)
    }

    /// Found by `perf/fuzz.sh` (FuzzStreamFacts, 2026-12-01): a scaling list whose
    /// delta_scale is far outside -128...127 overflowed Int32 and trapped the process.
    @Test func aScalingListDeltaBeyondItsRangeIsNoCrash() throws {
        let input = try #require(Data(base64Encoded: "AWf0////GgAAAQAAAAAAAAH////w+///5v/5AADxQqo="))
        _ = H264SPS(nalUnit: Array(input.dropFirst()))  // the fuzz target's first byte picks the parser
    }

    @Test func scalingListsAndPOCType1AreSkippedCorrectly() throws {
        let sps = try #require(H264SPS(nalUnit: Self.escape(Self.sps(widthInMBs: 80, heightInMapUnits: 45, timing: (1, 60), scalingMatrix: true, pocType: 1))))
        #expect(sps.width == 1280)
        #expect(sps.height == 720)
        #expect(sps.frameRate == 30)
    }

    @Test func baselineWithoutTimingHasNoFrameRate() throws {
        let sps = try #require(H264SPS(nalUnit: Self.escape(Self.sps(profile: 66, widthInMBs: 40, heightInMapUnits: 23, crop: (0, 4, 0, 4)))))
        #expect(sps.width == 632)
        #expect(sps.height == 360)
        #expect(sps.frameRate == nil)
    }

    @Test func notAnSPSOrTruncatedIsNil() {
        let good = Self.sps(widthInMBs: 120, heightInMapUnits: 68, crop: (0, 0, 0, 4), timing: (1, 50))
        #expect(H264SPS(nalUnit: [0x68] + good.dropFirst()) == nil) // a PPS header
        for length in 0..<11 {
            #expect(H264SPS(nalUnit: Array(good.prefix(length))) == nil, "prefix of \(length) bytes")
        }
        #expect(H264SPS(nalUnit: [0x67] + [UInt8](repeating: 0, count: 40)) == nil)
    }
}

@Suite struct HEVCSPSTests {
    static func sps(width: UInt64, height: UInt64, window: (UInt64, UInt64, UInt64, UInt64)?, subLayers: Int = 0) -> [UInt8] {
        var w = BitWriter()
        w.bits(33 << 1, 8)
        w.bits(1, 8)
        w.bits(0, 4)
        w.bits(UInt64(subLayers), 3)
        w.flag(true)
        w.bits(0, 2); w.flag(false); w.bits(1, 5) // Main
        w.bits(0x6000_0000, 32)
        w.bits(0b1001, 4)
        w.bits(0, 43); w.bits(0, 1)
        w.bits(93, 8)
        for _ in 0..<subLayers { w.flag(true); w.flag(true) }
        if subLayers > 0 { for _ in subLayers..<8 { w.bits(0, 2) } }
        for _ in 0..<subLayers { w.bits(0, 32); w.bits(0, 32); w.bits(0, 24); w.bits(90, 8) }
        w.ue(0)
        w.ue(1)
        w.ue(width)
        w.ue(height)
        w.flag(window != nil)
        if let window { w.ue(window.0); w.ue(window.1); w.ue(window.2); w.ue(window.3) }
        w.ue(0); w.ue(0); w.ue(4)
        w.trailingBits()
        return w.bytes
    }

    @Test func conformanceWindowCountsChromaSamples() throws {
        let sps = try #require(HEVCSPS(nalUnit: H264SPSTests.escape(Self.sps(width: 1920, height: 1088, window: (0, 0, 0, 4)))))
        #expect(sps.width == 1920)
        #expect(sps.height == 1080)
        #expect(sps.generalProfileIDC == 1)
        #expect(sps.generalLevelIDC == 93)
    }

    @Test func subLayerProfilesAreSkipped() throws {
        let sps = try #require(HEVCSPS(nalUnit: H264SPSTests.escape(Self.sps(width: 1280, height: 720, window: nil, subLayers: 2))))
        #expect(sps.width == 1280)
        #expect(sps.height == 720)
    }

    @Test func truncatedIsNil() {
        let good = Self.sps(width: 1920, height: 1088, window: (0, 0, 0, 4))
        for length in 0..<16 { #expect(HEVCSPS(nalUnit: Array(good.prefix(length))) == nil) }
        #expect(HEVCSPS(nalUnit: [0x42, 0x01]) == nil)
    }
}

@Suite struct AudioHeaderTests {
    @Test func adtsStereoAt44100() throws {
        // LC, index 4 (44.1 kHz), channel configuration 2, frame length 371.
        let length = 371
        let bytes: [UInt8] = [0xFF, 0xF1, 0x50, 0x80 | UInt8(length >> 11), UInt8(length >> 3 & 0xFF), UInt8(length & 7) << 5 | 0x1F, 0xFC]
        let header = try #require(ADTSHeader(bytes))
        #expect(header.audioObjectType == 2)
        #expect(header.sampleRate == 44100)
        #expect(header.channels == 2)
        #expect(header.frameLength == length)
    }

    @Test func adtsSevenMeansEightChannelsAndZeroIsUnknown() throws {
        let seven = try #require(ADTSHeader([0xFF, 0xF1, 0x4D, 0xC0, 0x2E, 0x7F, 0xFC]))
        #expect(seven.channelConfiguration == 7)
        #expect(seven.channels == 8)
        #expect(seven.sampleRate == 48000)
        let zero = try #require(ADTSHeader([0xFF, 0xF1, 0x4C, 0x00, 0x2E, 0x7F, 0xFC]))
        #expect(zero.channels == nil)
    }

    @Test func adtsRejectsBadSyncLayerAndRate() {
        #expect(ADTSHeader([0xFF, 0xE1, 0x50, 0x80, 0x2E, 0x7F, 0xFC]) == nil)
        #expect(ADTSHeader([0xFF, 0xF3, 0x50, 0x80, 0x2E, 0x7F, 0xFC]) == nil) // layer 01
        #expect(ADTSHeader([0xFF, 0xF1, 0x7C, 0x80, 0x2E, 0x7F, 0xFC]) == nil) // index 15
        #expect(ADTSHeader([0xFF, 0xF1, 0x50]) == nil)
    }

    @Test func ac3FiveOneAt448() throws {
        // fscod 0, frmsizecod 30 (448 kbit/s), bsid 8, acmod 7 (3/2), cmixlev, surmixlev, lfeon.
        let header = try #require(AC3Header([0x0B, 0x77, 0x12, 0x34, 0x1E, 0x40, 0xE1, 0x00]))
        #expect(header.kind == .ac3)
        #expect(header.acmod == 7)
        #expect(header.lfeOn)
        #expect(header.channels == 6)
        #expect(header.sampleRate == 48000)
        #expect(header.frameLength == 1792)
    }

    @Test func ac3StereoWithDolbySurroundMode() throws {
        // acmod 2: dsurmod (2 bits) precedes lfeon.  010 10 0 → lfeon 0.
        let header = try #require(AC3Header([0x0B, 0x77, 0, 0, 0x50 | 0x14, 0x40, 0b0101_0000, 0]))
        #expect(header.acmod == 2)
        #expect(!header.lfeOn)
        #expect(header.channels == 2)
        #expect(header.sampleRate == 44100)
        #expect(header.frameLength == 2 * (192 * 1_536_000 / (44_100 * 16)))
    }

    @Test func eac3IsToldApartByBSID() throws {
        let header = try #require(AC3Header([0x0B, 0x77, 0x02, 0xFF, 0x3F, 0x80, 0, 0]))
        #expect(header.kind == .eac3)
        #expect(header.bsid == 16)
        #expect(header.frameLength == 1536)
        #expect(header.channels == 6)
        #expect(header.sampleRate == 48000)
        let reduced = try #require(AC3Header([0x0B, 0x77, 0x02, 0xFF, 0xD4, 0x80, 0, 0]))
        #expect(reduced.sampleRate == 22050)
        #expect(reduced.channels == 2)
    }

    @Test func ac3RejectsReservedCodes() {
        #expect(AC3Header([0x0B, 0x77, 0, 0, 0xC0, 0x40, 0xE1, 0]) == nil) // fscod 3
        #expect(AC3Header([0x0B, 0x77, 0, 0, 0x26, 0x40, 0xE1, 0]) == nil) // frmsizecod 38
        #expect(AC3Header([0x0B, 0x77, 0, 0, 0x1E, 0xF8, 0xE1, 0]) == nil) // bsid 31
        #expect(AC3Header([0x0B, 0x78, 0, 0, 0x1E, 0x40, 0xE1, 0]) == nil)
    }

    @Test func loasFrameWithAndWithoutStreamMuxConfig() throws {
        // sync 0x2B7, length 0x010; useSameStreamMux 0, version 0, sameTimeFraming 1, subframes 0,
        // program 0, layer 0, AOT 2 (LC), index 3 (48 kHz), channel configuration 2.
        var w = BitWriter()
        w.bits(0x2B7, 11); w.bits(0x010, 13)
        w.flag(false); w.bits(0, 1); w.flag(true); w.bits(0, 6); w.bits(0, 4); w.bits(0, 3)
        w.bits(2, 5); w.bits(3, 4); w.bits(2, 4)
        w.bits(0, 16)
        let frame = try #require(LOASFrame(w.bytes))
        #expect(frame.frameLength == 19)
        #expect(frame.configuration == .init(audioObjectType: 2, sampleRate: 48000, channelConfiguration: 2))
        #expect(frame.configuration?.channels == 2)
        let same = try #require(LOASFrame([0x56, 0xE0, 0x10, 0x80, 0x00]))
        #expect(same.configuration == nil)
        #expect(LOASFrame([0x56, 0xC0, 0x10, 0x80]) == nil)
    }

    @Test func mp2MonoAt48k() throws {
        let header = try #require(MPEGAudioHeader([0xFF, 0xFD, 0xC4, 0xC0]))
        #expect(header.versionID == 3)
        #expect(header.layer == 2)
        #expect(header.bitRate == 256)
        #expect(header.sampleRate == 48000)
        #expect(header.channels == 1)
        #expect(header.frameLength == 768)
        let stereo = try #require(MPEGAudioHeader([0xFF, 0xFD, 0xC0, 0x00]))
        #expect(stereo.channels == 2)
        #expect(stereo.sampleRate == 44100)
        #expect(stereo.frameLength == 835)
    }

    @Test func mp2RejectsReservedFields() {
        #expect(MPEGAudioHeader([0xFF, 0xED, 0xC4, 0xC0]) == nil) // version 01
        #expect(MPEGAudioHeader([0xFF, 0xF9, 0xC4, 0xC0]) == nil) // layer 00
        #expect(MPEGAudioHeader([0xFF, 0xFD, 0xF4, 0xC0]) == nil) // bit rate 15
        #expect(MPEGAudioHeader([0xFF, 0xFD, 0xCC, 0xC0]) == nil) // sample rate 3
    }

    @Test func mpeg2SequenceHeader() throws {
        // 720 × 576, aspect 2, frame_rate_code 3 (25).
        let header = try #require(MPEGVideoSequenceHeader(afterStartCode: [0x2D, 0x02, 0x40, 0x23, 0x00, 0x00, 0x20]))
        #expect(header.width == 720)
        #expect(header.height == 576)
        #expect(header.frameRate == 25)
        #expect(MPEGVideoSequenceHeader(afterStartCode: [0x2D, 0x02]) == nil)
        #expect(MPEGVideoSequenceHeader(afterStartCode: [0x2D, 0x02, 0x40, 0x23, 0x00, 0x00, 0x00]) == nil, "no marker bit")
        #expect(MPEGVideoSequenceHeader(afterStartCode: [0x2D, 0x02, 0x40, 0x03, 0x00, 0x00, 0x20]) == nil, "aspect code 0")
    }
}

@Suite struct PMTTests {
    /// A PMT section with a valid CRC.
    static func section(streams: [(type: UInt8, pid: UInt16, descriptors: [UInt8])], pcrPID: UInt16 = 0x100) -> [UInt8] {
        var body: [UInt8] = [0x00, 0x01, 0xC1, 0x00, 0x00, 0xE0 | UInt8(pcrPID >> 8), UInt8(pcrPID & 0xFF), 0xF0, 0x00]
        for stream in streams {
            body += [stream.type, 0xE0 | UInt8(stream.pid >> 8), UInt8(stream.pid & 0xFF), 0xF0 | UInt8(stream.descriptors.count >> 8), UInt8(stream.descriptors.count & 0xFF)]
            body += stream.descriptors
        }
        let length = body.count + 4
        var section: [UInt8] = [0x02, 0xB0 | UInt8(length >> 8), UInt8(length & 0xFF)] + body
        let crc = section.withUnsafeBytes { CRC32MPEG.checksum($0) }
        section += [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        return section
    }

    @Test func atscStyleStreamTypes() throws {
        let pmt = try #require(PMT(section: Self.section(streams: [(0x1B, 0x100, []), (0x0F, 0x101, []), (0x81, 0x102, [])])))
        #expect(pmt.pcrPID == 0x100)
        #expect(pmt.programNumber == 1)
        #expect(pmt.streams.map(\.pid) == [0x100, 0x101, 0x102])
        #expect(pmt.video?.videoCodec == .h264)
        #expect(pmt.audio?.audioCodec == .aac)
        #expect(pmt.streams[2].audioCodec == .ac3)
    }

    @Test func dvbPrivatePESIsNamedByItsDescriptor() throws {
        let pmt = try #require(PMT(section: Self.section(streams: [
            (0x06, 0x200, [0x56, 0x05, 0x65, 0x6E, 0x67, 0x09, 0x00]), // teletext first: not audio
            (0x06, 0x201, [0x0A, 0x04, 0x65, 0x6E, 0x67, 0x00, 0x7A, 0x01, 0x00]),
            (0x06, 0x202, [0x6A, 0x01, 0x00]),
            (0x24, 0x203, []),
        ])))
        #expect(pmt.streams[0].audioCodec == nil)
        #expect(pmt.streams[0].descriptorTags == [0x56])
        #expect(pmt.streams[1].descriptorTags == [0x0A, 0x7A])
        #expect(pmt.audio?.pid == 0x201)
        #expect(pmt.audio?.audioCodec == .eac3)
        #expect(pmt.streams[2].audioCodec == .ac3)
        #expect(pmt.video?.videoCodec == .hevc)
    }

    @Test func registrationDescriptorNamesTheFormat() throws {
        let pmt = try #require(PMT(section: Self.section(streams: [(0x06, 0x300, [0x05, 0x04, 0x41, 0x43, 0x2D, 0x33])])))
        #expect(pmt.streams[0].registration == "AC-3")
        #expect(pmt.audio?.audioCodec == .ac3)
    }

    @Test func mpegAndUnknownTypes() throws {
        let pmt = try #require(PMT(section: Self.section(streams: [(0x02, 0x10, []), (0x03, 0x11, []), (0x04, 0x12, []), (0xEA, 0x13, []), (0x82, 0x14, [])])))
        #expect(pmt.streams.map(\.videoCodec) == [.mpeg2, nil, nil, .unknown, nil])
        #expect(pmt.streams.map(\.audioCodec) == [nil, .mp2, .mp2, nil, .unknown])
        let latm = try #require(PMT(section: Self.section(streams: [(0x11, 0x20, [])])))
        #expect(latm.audio?.audioCodec == .aacLATM)
    }

    @Test func corruptSectionsAreRejected() {
        var bad = Self.section(streams: [(0x1B, 0x100, [])])
        bad[bad.count - 6] ^= 0x01
        #expect(PMT(section: bad) == nil, "CRC mismatch")
        var wrongTable = Self.section(streams: [(0x1B, 0x100, [])])
        wrongTable[0] = 0x00
        #expect(PMT(section: wrongTable) == nil)
        #expect(PMT(section: Array(Self.section(streams: [(0x1B, 0x100, [])]).prefix(10))) == nil)
        // A descriptor running past its stream's info length.
        #expect(PMT(section: Self.section(streams: [(0x06, 0x100, [0x6A, 0x09, 0x00])])) == nil)
    }
}
