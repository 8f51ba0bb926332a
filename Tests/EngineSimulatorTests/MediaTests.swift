import EngineSimulator
import Foundation
import Testing

@Suite("Media")
struct MediaTests {
    @Test func syntheticStreamHasTheStructureOfABroadcast() throws {
        let bytes = try SyntheticTransportStream.make(bitsPerSecond: 3_000_000, seconds: 4)
        #expect(bytes.count % 188 == 0)
        var checker = TransportStreamChecker()
        checker.feed(bytes)
        #expect(checker.syncErrors == 0)
        #expect(checker.continuityErrors == 0)
        #expect(checker.pcrRegressions == 0)
        #expect(checker.ptsRegressions == 0)
        #expect(checker.largestPCRGap <= 40 * 27_000, "PCR gap \(checker.largestPCRGap) ticks")
        // A key frame each second, each right after PAT and PMT.
        #expect(checker.randomAccessPoints == 4)
        #expect(checker.patCount == 4)
        #expect(checker.everyKeyFrameFollowsTables)
        let measured = try #require(checker.bitsPerSecondFromPCR)
        #expect(abs(measured - 3_000_000) < 3_000, "bitrate from PCR: \(measured)")
        // First packets: PAT, then the PMT.
        #expect(bytes[1] & 0x1F == 0 && bytes[2] == 0)
        #expect(UInt16(bytes[188 + 1] & 0x1F) << 8 | UInt16(bytes[188 + 2]) == SyntheticTransportStream.programMapPID)
    }

    @Test func syntheticBitrateOutOfRangeIsRefused() {
        #expect(throws: EngineSimulatorError.self) { try SyntheticTransportStream.make(bitsPerSecond: 1000, seconds: 1) }
        var configuration = EngineSimulatorConfiguration()
        configuration.syntheticLoopSeconds = 0
        #expect(throws: EngineSimulatorError.syntheticDurationOutOfRange(0)) {
            try EngineSimulator(configuration: configuration)
        }
    }

    @Test func fileMediaMustBeTransportStream() throws {
        let scratch = try TestDirectory("sim")
        let directory = scratch.url
        func load(_ bytes: [UInt8]) throws {
            let path = directory.appendingPathComponent("media-\(bytes.count).ts").path
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            var configuration = EngineSimulatorConfiguration()
            configuration.media = .file(path)
            _ = try EngineSimulator(configuration: configuration)
        }
        let synthetic = try SyntheticTransportStream.make(bitsPerSecond: 1_000_000, seconds: 1)
        try load(synthetic)

        var error = #expect(throws: EngineSimulatorError.self) { try load(Array(synthetic.dropLast(5))) }
        #expect(error?.description.contains("not a multiple of 188") == true)
        var shifted = synthetic
        shifted[188 * 7] = 0x00
        error = #expect(throws: EngineSimulatorError.self) { try load(shifted) }
        #expect(error?.description.contains("packet 7") == true)
        error = #expect(throws: EngineSimulatorError.self) { try load([]) }
        #expect(error?.description.contains("empty") == true)
        // Whole packets, but no PCR at all: the bitrate cannot be known.
        let noClock = [UInt8](repeating: 0xFF, count: 188 * 4).enumerated().map { $0.offset % 188 == 0 ? 0x47 : $0.element }
        error = #expect(throws: EngineSimulatorError.self) { try load(noClock) }
        #expect(error?.description.contains("PCR") == true)
        #expect(throws: EngineSimulatorError.self) {
            var configuration = EngineSimulatorConfiguration()
            configuration.media = .file(directory.appendingPathComponent("missing.ts").path)
            _ = try EngineSimulator(configuration: configuration)
        }
    }
}
