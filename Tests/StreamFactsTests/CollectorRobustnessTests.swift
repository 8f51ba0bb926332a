import Testing
@testable import StreamFacts

/// Garbage, truncation and corruption must never crash the collector nor make it report a wrong fact.
@Suite struct CollectorRobustnessTests {
    /// A deterministic generator, so a failure reproduces.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func collect(_ bytes: [UInt8], batch: Int = 7 * 188) -> StreamFactsCollector {
        let collector = StreamFactsCollector()
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let end = min(offset + batch, buffer.count)
                collector.consume(UnsafeRawBufferPointer(rebasing: buffer[offset..<end]))
                offset = end
            }
        }
        return collector
    }

    /// Every fact the collector states must be the true one; unknown is allowed.
    static func expectNoWrongFacts(_ facts: StreamFacts, truth: StreamFacts, _ comment: Comment, sourceLocation: SourceLocation = #_sourceLocation) {
        if let v = facts.videoCodec { #expect(v == truth.videoCodec, comment, sourceLocation: sourceLocation) }
        if let v = facts.width { #expect(v == truth.width, comment, sourceLocation: sourceLocation) }
        if let v = facts.height { #expect(v == truth.height, comment, sourceLocation: sourceLocation) }
        if let v = facts.fps { #expect(abs(v - (truth.fps ?? -1)) < 0.01, comment, sourceLocation: sourceLocation) }
        if let v = facts.audioCodec { #expect(v == truth.audioCodec, comment, sourceLocation: sourceLocation) }
        if let v = facts.audioChannels { #expect(v == truth.audioChannels, comment, sourceLocation: sourceLocation) }
        if let v = facts.audioSampleRate { #expect(v == truth.audioSampleRate, comment, sourceLocation: sourceLocation) }
    }

    @Test func randomBytesGiveNoFacts() {
        var random = SplitMix(state: 42)
        for round in 0..<20 {
            var bytes = (0..<(188 * 500)).map { _ in UInt8.random(in: 0...255, using: &random) }
            // Half the rounds look like packets: sync bytes, and PIDs 0 and 0x100 often.
            if round % 2 == 0 {
                for start in stride(from: 0, to: bytes.count, by: 188) {
                    bytes[start] = 0x47
                    if start % 3 == 0 { bytes[start + 1] &= 0xE0; bytes[start + 2] = 0 }
                    if start % 3 == 1 { bytes[start + 1] = bytes[start + 1] & 0xE0 | 0x01; bytes[start + 2] = 0 }
                }
            }
            let collector = Self.collect(bytes)
            #expect(collector.facts == StreamFacts(), "round \(round): \(collector.facts)")
            #expect(!collector.isComplete)
        }
    }

    @Test func partialPacketsAndEmptyBatchesAreHarmless() {
        let collector = StreamFactsCollector()
        let bytes: [UInt8] = [0x47, 0x40, 0x00, 0x10, 0x00]
        bytes.withUnsafeBytes { collector.consume($0) }
        [UInt8]().withUnsafeBytes { collector.consume($0) }
        #expect(collector.packetsSeen == 0)
        #expect(collector.facts == StreamFacts())
    }

    @Test(.enabled(if: MediaFixture.toolsInstalled && MediaFixture.encoders.contains("libx264"), "needs ffmpeg with libx264"))
    func truncatedAndCorruptedRealStreamsNeverGiveWrongFacts() throws {
        let fixture = try MediaFixture(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-f", "lavfi", "-i", "sine",
                                        "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-ac", "2"])
        let truth = Self.collect(fixture.bytes).facts
        #expect(truth == StreamFacts(videoCodec: .h264, width: 1280, height: 720, fps: 25, audioCodec: .aac, audioChannels: 2, audioSampleRate: 44100))

        // Cut anywhere, even inside a packet.
        var random = SplitMix(state: 7)
        let packets = fixture.bytes.count / 188
        for cut in [1, 2, 3, 5, 10, 40, 100] + (0..<20).map({ _ in Int.random(in: 0..<packets, using: &random) }) {
            let length = cut * 188 + Int.random(in: 0..<188, using: &random)
            let collector = Self.collect(Array(fixture.bytes.prefix(length)), batch: 188 * Int.random(in: 1...20, using: &random))
            Self.expectNoWrongFacts(collector.facts, truth: truth, "cut at \(length)")
        }

        // Flip random bits after the packet headers, so the PIDs stay right and only payloads go bad.
        for round in 0..<10 {
            var bytes = fixture.bytes
            for _ in 0..<(bytes.count / 50) {
                let index = Int.random(in: 0..<bytes.count, using: &random)
                if index % 188 >= 4 { bytes[index] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random) }
            }
            Self.expectNoWrongFacts(Self.collect(bytes).facts, truth: truth, "corruption round \(round)")
        }

        // Drop every fifth packet: continuity breaks everywhere.
        var dropped: [UInt8] = []
        for packet in 0..<packets where packet % 5 != 4 {
            dropped += fixture.bytes[(packet * 188)..<((packet + 1) * 188)]
        }
        Self.expectNoWrongFacts(Self.collect(dropped).facts, truth: truth, "dropped packets")

        // Shifted by a few bytes: no packet is aligned, so nothing may be learnt.
        let shifted = Self.collect(Array(fixture.bytes.dropFirst(3)))
        #expect(shifted.facts == StreamFacts())
    }

    @Test(.enabled(if: MediaFixture.toolsInstalled && MediaFixture.encoders.contains("libx264"), "needs ffmpeg with libx264"))
    func collectorStopsCopyingOnceComplete() throws {
        let fixture = try MediaFixture(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i", "sine",
                                        "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"])
        let collector = StreamFactsCollector()
        var completeAt: Int?
        fixture.bytes.withUnsafeBytes { file in
            for packet in 0..<(file.count / 188) {
                collector.consume(UnsafeRawBufferPointer(rebasing: file[(packet * 188)..<((packet + 1) * 188)]))
                if collector.isComplete { completeAt = packet; break }
            }
        }
        // The PTS step needs nine video PES headers at 25 fps: well under one second of a 2 s file.
        let at = try #require(completeAt)
        #expect(at < fixture.bytes.count / 188 / 2, "complete only at packet \(at)")
    }
}
