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

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/ffmpeg"), "needs ffmpeg"))
    func realMediaLoopsWithoutContinuityErrorsInFFmpeg() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sim-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
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

        let ffmpeg = Process()
        ffmpeg.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        ffmpeg.arguments = ["-nostdin", "-v", "debug", "-i", url, "-t", "7", "-c", "copy", "-f", "null", "-"]
        let output = Pipe()
        ffmpeg.standardError = output
        ffmpeg.standardOutput = FileHandle.nullDevice
        try ffmpeg.run()
        let log = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ffmpeg.waitUntilExit()

        #expect(ffmpeg.terminationStatus == 0, "ffmpeg failed: \(log.suffix(500))")
        let continuityErrors = log.components(separatedBy: "Continuity check failed").count - 1
        #expect(continuityErrors == 0)
        #expect(!log.contains("timestamp discontinuity"), "timestamps jumped at a seam")
        #expect(!log.contains("Non-monotonic DTS"), "timestamps went backwards at a seam")
        // ffmpeg's final stats line shows how far it got: past both seams (6 s).
        let times = log.components(separatedBy: "time=").dropFirst().compactMap { $0.split(separator: " ").first }
        let reached = times.last.map(String.init) ?? ""
        #expect(reached.hasPrefix("00:00:06") || reached.hasPrefix("00:00:07"), "ffmpeg reached \(reached)")
    }
}
