import EngineSimulator
import Foundation
import Testing

@Suite("Playback")
struct PlaybackTests {
    @Test func playbackIsAlignedTransportStreamBurstThenPaced() throws {
        let bitsPerSecond = 2_000_000
        let harness = try SimulatorHarness {
            $0.media = .synthetic(bitsPerSecond: bitsPerSecond)
            $0.initialBurstSeconds = 1
        }
        let stream = try harness.openPlayback(try harness.getstream(SimulatorHarness.contentID()))
        #expect(stream.status == 200)
        #expect(stream.headers["content-type"] == "video/mp2t")
        #expect(stream.headers["transfer-encoding"] == "chunked")

        let bytesPerSecond = Double(bitsPerSecond) / 8
        stream.read(for: 0.3)
        let afterBurst = stream.body.count
        // The burst (1 s of media) arrives at once.
        #expect(Double(afterBurst) >= bytesPerSecond * 0.95)
        #expect(Double(afterBurst) <= bytesPerSecond * 1.5)

        let start = Date()
        stream.read(for: 2)
        let elapsed = Date().timeIntervalSince(start)
        let rate = Double(stream.body.count - afterBurst) / elapsed
        #expect(rate > bytesPerSecond * 0.75 && rate < bytesPerSecond * 1.25, "paced at \(rate) B/s")

        #expect(stream.body.first == 0x47)
        var checker = TransportStreamChecker()
        checker.feed(stream.body)
        #expect(checker.syncErrors == 0)
        #expect(checker.continuityErrors == 0)
    }

    @Test func continuityAndTimestampsCarryOnAcrossLoopSeams() throws {
        // A 1 s loop and a 4.5 s burst: four seams arrive at once.
        let harness = try SimulatorHarness {
            $0.media = .synthetic(bitsPerSecond: 1_000_000)
            $0.syntheticLoopSeconds = 1
            $0.initialBurstSeconds = 4.5
        }
        let stream = try harness.openPlayback(try harness.getstream(SimulatorHarness.contentID()))
        let loopBytes = 1_000_000 / 8
        #expect(stream.read(atLeast: loopBytes * 4 + 188 * 10, within: 3))

        var checker = TransportStreamChecker()
        checker.feed(stream.body)
        #expect(checker.packets > loopBytes * 4 / 188)
        #expect(checker.syncErrors == 0)
        #expect(checker.continuityErrors == 0)
        #expect(checker.pcrRegressions == 0)
        #expect(checker.ptsRegressions == 0)
        #expect(checker.largestPCRGap <= 40 * 27_000)
        #expect(checker.patCount >= 4)
        let measured = try #require(checker.bitsPerSecondFromPCR)
        #expect(abs(measured - 1_000_000) < 10_000, "bitrate from PCR across seams: \(measured)")
    }

    @Test func sessionsOfDifferentContentsStreamIndependently() throws {
        let harness = try SimulatorHarness()
        let a = try harness.openPlayback(try harness.getstream(SimulatorHarness.contentID()))
        let b = try harness.openPlayback(try harness.getstream(SimulatorHarness.contentID()))
        #expect(a.read(atLeast: 100_000, within: 2))
        #expect(b.read(atLeast: 100_000, within: 2))
        // Each starts at the beginning of the media, on its own clock.
        #expect(a.body.prefix(100_000) == b.body.prefix(100_000))
        #expect(harness.simulator.totalCounters.activeSessions == 2)
    }

    @Test func redirectModeAnswersWithTheStreamItself() throws {
        let harness = try SimulatorHarness()
        let id = SimulatorHarness.contentID()
        let stream = try TestPlaybackStream(port: harness.port, path: "/ace/getstream?id=\(id)&pid=vlc")
        #expect(stream.status == 200)
        #expect(stream.headers["content-type"] == "video/mp2t")
        #expect(stream.read(atLeast: 188 * 100, within: 2))
        #expect(stream.body.first == 0x47)
        #expect(harness.simulator.counters(for: id).sessionsStarted == 1)
    }

    @Test func shutdownClosesPlaybackAndRefusesConnections() throws {
        let harness = try SimulatorHarness()
        let stream = try harness.openPlayback(try harness.getstream(SimulatorHarness.contentID()))
        #expect(stream.read(atLeast: 188, within: 2))
        let port = harness.port
        harness.simulator.shutdown()
        #expect(stream.readUntilEnd(within: 2) != nil)
        #expect(throws: TestHTTPError.connectFailed(errno: ECONNREFUSED)) { try TestHTTPConnection(port: port) }
        harness.simulator.shutdown()
    }

    @Test(.enabled(if: FFmpeg.isInstalled, "needs /usr/bin/ffmpeg"))
    func realMediaLoopsWithoutContinuityErrorsInFFmpeg() throws {
        let scratch = try TestDirectory("sim")
        let directory = scratch.url
        let media = directory.appendingPathComponent("media.ts").path
        try EngineSimulator.makeTestMedia(at: media, seconds: 3, videoBitrate: "1M", size: "640x360")

        // A burst longer than two loops: ffmpeg reads past two seams without waiting.
        let harness = try SimulatorHarness {
            $0.media = .file(media)
            $0.initialBurstSeconds = 7.5
        }
        #expect(abs(harness.simulator.mediaLoopSeconds - 3) < 0.1)
        let session = try harness.getstream(SimulatorHarness.contentID())
        let url = "http://127.0.0.1:\(harness.port)" + TestHTTP.path(of: session["playback_url"] as? String ?? "")
        let run = try FFmpeg.run(["-v", "debug", "-i", url, "-t", "7", "-c", "copy", "-f", "null", "-"])

        #expect(run.status == 0, "ffmpeg failed: \(run.log.suffix(500))")
        #expect(run.count("Continuity check failed") == 0)
        #expect(run.count("timestamp discontinuity") == 0, "timestamps jumped at a seam")
        #expect(run.count("Non-monotonic DTS") == 0, "timestamps went backwards at a seam")
        #expect(run.reachedSeconds >= 6, "ffmpeg stopped at \(run.reachedSeconds) s, before the second seam")
    }

    @Test(.enabled(if: FFmpeg.isInstalled, "needs /usr/bin/ffmpeg"))
    func syntheticMediaDecodesCleanlyAcrossSeamsInFFmpeg() throws {
        let harness = try SimulatorHarness {
            $0.syntheticLoopSeconds = 1
            $0.initialBurstSeconds = 4.5
        }
        let session = try harness.getstream(SimulatorHarness.contentID())
        let url = "http://127.0.0.1:\(harness.port)" + TestHTTP.path(of: session["playback_url"] as? String ?? "")
        // Decoding, not copying: the synthetic picture and sound are real H.264 and MPEG audio.
        let run = try FFmpeg.run(["-v", "debug", "-i", url, "-t", "4", "-f", "null", "-"])

        #expect(run.status == 0, "ffmpeg failed: \(run.log.suffix(500))")
        #expect(run.count("Continuity check failed") == 0)
        #expect(run.count("timestamp discontinuity") == 0)
        #expect(run.log.contains(" 0 decoding errors"), "decoding errors: \(run.log.suffix(800))")
        #expect(run.reachedSeconds >= 3.9)
    }
}

/// ffmpeg, run to completion with its log captured.
enum FFmpeg {
    static let path = "/usr/bin/ffmpeg"
    static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: path) }

    struct Run {
        var status: Int32
        var log: String

        /// How many times `text` appears in the log.
        func count(_ text: String) -> Int { log.components(separatedBy: text).count - 1 }

        /// The last `time=HH:MM:SS.ss` of the progress lines, in seconds.
        var reachedSeconds: Double {
            guard let last = log.components(separatedBy: "time=").dropFirst().last?.split(separator: " ").first
            else { return 0 }
            return last.split(separator: ":").reduce(0) { $0 * 60 + (Double($1) ?? 0) }
        }
    }

    static func run(_ arguments: [String]) throws -> Run {
        // ffmpeg writes nothing on stdout with `-f null -`; its log is on stderr.
        let outcome = try ChildProcess.run(path, ["-nostdin"] + arguments)
        return Run(status: outcome.status, log: outcome.output)
    }
}
