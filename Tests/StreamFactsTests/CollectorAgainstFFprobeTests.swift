import Testing
@testable import StreamFacts

/// Real ffmpeg output, fed to the collector, must give what ffprobe reports for the same file.
@Suite(.enabled(if: MediaFixture.toolsInstalled, "needs /usr/bin/ffmpeg and /usr/bin/ffprobe"))
struct CollectorAgainstFFprobeTests {
    static func has(_ encoders: String...) -> Bool { encoders.allSatisfy { MediaFixture.encoders.contains($0) } }

    static func lavfi(video: String, audio: String? = "sine=frequency=440:sample_rate=48000", seconds: Int = 2) -> [String] {
        var arguments = ["-f", "lavfi", "-i", video]
        if let audio { arguments += ["-f", "lavfi", "-i", audio] }
        return arguments + ["-t", String(seconds)]
    }

    /// Feeds the fixture in batches of seven packets, as a UDP-sized ingest read would,
    /// and compares every fact with ffprobe's.
    @discardableResult
    func collectAndCompare(_ fixture: MediaFixture, sourceLocation: SourceLocation = #_sourceLocation) throws -> StreamFacts {
        #expect(fixture.bytes.count % 188 == 0, sourceLocation: sourceLocation)
        let collector = StreamFactsCollector()
        var completedAtPacket: Int?
        fixture.bytes.withUnsafeBytes { file in
            var offset = 0
            while offset < file.count {
                let end = min(offset + 7 * 188, file.count)
                collector.consume(UnsafeRawBufferPointer(rebasing: file[offset..<end]))
                offset = end
                if completedAtPacket == nil && collector.isComplete { completedAtPacket = collector.packetsSeen }
            }
        }
        let facts = collector.facts
        #expect(completedAtPacket != nil, "never complete: \(facts)", sourceLocation: sourceLocation)
        if let video = fixture.video {
            #expect(facts.videoCodec?.name == video.codecName, sourceLocation: sourceLocation)
            #expect(facts.width == video.width, sourceLocation: sourceLocation)
            #expect(facts.height == video.height, sourceLocation: sourceLocation)
            #expect(facts.resolution == "\(video.width ?? 0)x\(video.height ?? 0)", sourceLocation: sourceLocation)
            let fps = try #require(facts.fps, "no fps", sourceLocation: sourceLocation)
            let probed = try #require(video.avgFrameRate ?? video.rFrameRate, sourceLocation: sourceLocation)
            #expect(abs(fps - probed) < 0.01, "fps \(fps), ffprobe \(probed)", sourceLocation: sourceLocation)
            if let r = video.rFrameRate {
                #expect(abs(fps - r) < 0.01, "fps \(fps), ffprobe r_frame_rate \(r)", sourceLocation: sourceLocation)
            }
        } else {
            #expect(facts.videoCodec == nil, sourceLocation: sourceLocation)
        }
        if let audio = fixture.audio {
            #expect(facts.audioCodec?.name == audio.codecName, sourceLocation: sourceLocation)
            #expect(facts.audioChannels == audio.channels, sourceLocation: sourceLocation)
            #expect(facts.audioSampleRate == audio.sampleRate, sourceLocation: sourceLocation)
        } else {
            #expect(facts.audioCodec == nil, sourceLocation: sourceLocation)
        }
        return facts
    }

    @Test(.enabled(if: has("libx264", "aac"), "this ffmpeg has no libx264 or aac encoder"))
    func h264At720p25WithStereoAAC() throws {
        let fixture = try MediaFixture(Self.lavfi(video: "testsrc2=size=1280x720:rate=25", audio: "sine")
            + ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-ac", "2"])
        let facts = try collectAndCompare(fixture)
        #expect(facts == StreamFacts(videoCodec: .h264, width: 1280, height: 720, fps: 25, audioCodec: .aac, audioChannels: 2, audioSampleRate: 44100))
    }

    @Test(.enabled(if: has("libx264", "aac"), "this ffmpeg has no libx264 or aac encoder"))
    func h264At360p30WithBFramesAndMonoAAC() throws {
        // veryfast keeps B-frames: PTS order differs from decode order.
        let fixture = try MediaFixture(Self.lavfi(video: "testsrc2=size=640x360:rate=30")
            + ["-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", "-ac", "1"])
        let facts = try collectAndCompare(fixture)
        #expect(facts.resolution == "640x360")
        #expect(facts.fps == 30)
    }

    @Test(.enabled(if: has("libx264", "aac"), "this ffmpeg has no libx264 or aac encoder"))
    func h264At2997WithFiveOneAAC() throws {
        let fixture = try MediaFixture(Self.lavfi(video: "testsrc2=size=1280x720:rate=30000/1001")
            + ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-ac", "6"])
        let facts = try collectAndCompare(fixture)
        #expect(facts.audioChannels == 6)
    }

    @Test(.enabled(if: has("libx265", "aac"), "this ffmpeg has no libx265 encoder"))
    func hevcTakesItsFrameRateFromTheTimestampStep() throws {
        let fixture = try MediaFixture(Self.lavfi(video: "testsrc2=size=1280x720:rate=30000/1001")
            + ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error", "-c:a", "aac", "-ac", "2"])
        let facts = try collectAndCompare(fixture)
        #expect(facts.videoCodec == .hevc)
        #expect(facts.resolution == "1280x720")
    }

    @Test(.enabled(if: has("libx265", "aac"), "this ffmpeg has no libx265 encoder"))
    func hevcAt1080pAppliesTheConformanceWindow() throws {
        let fixture = try MediaFixture(Self.lavfi(video: "testsrc2=size=1920x1080:rate=25", seconds: 1)
            + ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error", "-c:a", "aac"])
        let facts = try collectAndCompare(fixture)
        #expect(facts.resolution == "1920x1080")
    }

    @Test(.enabled(if: has("libx264", "ac3"), "this ffmpeg has no libx264 or ac3 encoder"))
    func h264At1080pIsCroppedAndAC3HasSixChannels() throws {
        // 1080 lines are coded as 68 macroblock rows (1088) and cropped.
        let fixture = try MediaFixture(Self.lavfi(video: "testsrc2=size=1920x1080:rate=25")
            + ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "ac3", "-ac", "6"])
        let facts = try collectAndCompare(fixture)
        #expect(facts == StreamFacts(videoCodec: .h264, width: 1920, height: 1080, fps: 25, audioCodec: .ac3, audioChannels: 6, audioSampleRate: 48000))
    }

    @Test(.enabled(if: has("libx264", "ac3"), "this ffmpeg has no libx264 or ac3 encoder"))
    func interlacedH264WithDVBStyleAC3() throws {
        // system_b: AC-3 as private PES (stream type 0x06) named by descriptor 0x6A.
        let fixture = try MediaFixture(Self.lavfi(video: "testsrc2=size=1920x1080:rate=25")
            + ["-c:v", "libx264", "-preset", "ultrafast", "-flags", "+ildct+ilme", "-x264-params", "interlaced=1",
               "-c:a", "ac3", "-ac", "2", "-mpegts_flags", "system_b"])
        let facts = try collectAndCompare(fixture)
        #expect(facts.videoCodec == .h264)
        #expect(facts.audioCodec == .ac3)
    }

    @Test(.enabled(if: has("libx264", "aac"), "this ffmpeg has no libx264 encoder"))
    func oddWidthIsCroppedHorizontally() throws {
        let fixture = try MediaFixture(Self.lavfi(video: "testsrc2=size=854x482:rate=50", audio: nil)
            + ["-c:v", "libx264", "-preset", "ultrafast"])
        let facts = try collectAndCompare(fixture)
        #expect(facts.resolution == "854x482")
        #expect(facts.audioCodec == nil)
    }

    @Test(.enabled(if: has("libx264", "eac3"), "this ffmpeg has no eac3 encoder"))
    func eac3FiveOneInATSCAndDVBForm() throws {
        for flags in [[], ["-mpegts_flags", "system_b"]] {
            let fixture = try MediaFixture(Self.lavfi(video: "testsrc2=size=640x360:rate=25", seconds: 1)
                + ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "eac3", "-ac", "6"] + flags)
            let facts = try collectAndCompare(fixture)
            #expect(facts.audioCodec == .eac3, "\(flags)")
            #expect(facts.audioChannels == 6, "\(flags)")
        }
    }

    @Test(.enabled(if: has("libx264", "aac"), "this ffmpeg has no libx264 or aac encoder"))
    func aacInLATMReadsItsStreamMuxConfig() throws {
        let fixture = try MediaFixture(Self.lavfi(video: "testsrc2=size=320x240:rate=25", audio: "sine=sample_rate=48000")
            + ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-ac", "2", "-mpegts_flags", "latm"])
        let facts = try collectAndCompare(fixture)
        #expect(facts.audioCodec == .aacLATM)
        #expect(facts.audioChannels == 2)
    }

    @Test(.enabled(if: has("mpeg2video", "mp2"), "this ffmpeg has no mpeg2video or mp2 encoder"))
    func mpeg2VideoWithMonoMP2() throws {
        let fixture = try MediaFixture(Self.lavfi(video: "testsrc2=size=720x576:rate=25")
            + ["-c:v", "mpeg2video", "-c:a", "mp2", "-ac", "1"])
        let facts = try collectAndCompare(fixture)
        #expect(facts == StreamFacts(videoCodec: .mpeg2, width: 720, height: 576, fps: 25, audioCodec: .mp2, audioChannels: 1, audioSampleRate: 48000))
    }

    @Test(.enabled(if: has("mpeg1video", "mp2"), "this ffmpeg has no mpeg1video or mp2 encoder"))
    func mpeg1VideoWithStereoMP2() throws {
        let fixture = try MediaFixture(Self.lavfi(video: "testsrc2=size=352x288:rate=25", audio: "sine=sample_rate=44100")
            + ["-c:v", "mpeg1video", "-c:a", "mp2", "-ac", "2"])
        let facts = try collectAndCompare(fixture)
        #expect(facts.videoCodec == .mpeg1)
        #expect(facts.audioChannels == 2)
    }
}
