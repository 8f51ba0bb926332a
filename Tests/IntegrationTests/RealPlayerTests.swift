import EngineSimulator
import Foundation
import Testing
@testable import RelayCore

/// Real players (ffmpeg, mpv) on a real H.264/AAC stream through the relay.
/// `.ci/run` installs both; a missing one fails these tests rather than skipping them.
@Suite(.serialized) struct RealPlayerTests {
    /// A 4 s real test card: the simulator loops it, so a 12 s run crosses the seam twice.
    /// Made once per test process, in a directory removed when it exits.
    static let media: String? = {
        let path = TestDirectory.path("media") + "/test.ts"
        return (try? EngineSimulator.makeTestMedia(at: path, seconds: 4, videoBitrate: "2M", size: "640x360")) != nil ? path : nil
    }()

    /// Runs a command, returning its exit status and everything it printed.
    private func run(_ executable: String, _ arguments: [String]) throws -> ChildProcess.Outcome {
        try ChildProcess.run(executable, arguments)
    }

    @Test func ffmpegCountsNoContinuityErrorsWithFiftyPlayersOnOneSession() throws {
        let media = try #require(Self.media, "ffmpeg must be installed to make the test media (apt-get install ffmpeg)")
        let harness = try RelayHarness(media: .file(media))
        defer { harness.stop() }
        let id = RelayHarness.contentID(50)
        let url = "http://127.0.0.1:\(harness.port)\(RelayHarness.path(id))"
        // 47 socket players and 3 ffmpeg players, all at once, for 12 s.
        let results = concurrently(50) { i -> (Int, String) in
            if i < 3 {
                let result = try? self.run(ffmpegPath, ["-hide_banner", "-nostdin", "-v", "debug", "-i", url, "-t", "12", "-c", "copy", "-f", "null", "-"])
                return (Int(result?.status ?? -1), result?.output ?? "")
            }
            guard let player = try? harness.player(id), (try? player.readHead())?.status == 200 else { return (-1, "") }
            let data = player.drain(seconds: 12, keep: true).data
            let check = TSCheck(data)
            return (check.misaligned == 0 && check.continuityErrors == 0 && check.packets > 1000 ? 0 : 1, "")
        }
        for (i, (status, output)) in results.enumerated() {
            #expect(status == 0, "player \(i) failed")
            if i < 3 {
                let failures = output.components(separatedBy: "Continuity check failed").count - 1
                #expect(failures == 0, "ffmpeg saw \(failures) continuity errors")
                #expect(output.contains("Input #0, mpegts"))
            }
        }
        #expect(harness.simulator.counters(for: id).sessionsStarted == 1)
        #expect(harness.simulator.counters(for: id).playbackConnections == 1)
    }

    @Test func mpvPlaysTheRelayedStreamWithoutDamage() throws {
        let media = try #require(Self.media, "ffmpeg must be installed to make the test media (apt-get install ffmpeg)")
        #expect(FileManager.default.isExecutableFile(atPath: "/usr/bin/mpv"), "apt-get install mpv")
        let harness = try RelayHarness(media: .file(media))
        defer { harness.stop() }
        let url = "http://127.0.0.1:\(harness.port)\(RelayHarness.path(RelayHarness.contentID(51)))"
        let result = try run("/usr/bin/mpv", ["--no-config", "--vo=null", "--ao=null", "--length=6", "--msg-level=all=warn", url])
        #expect(result.status == 0, "\(result.output)")
        #expect(!result.output.contains("Packet corrupt"))
        #expect(!result.output.lowercased().contains("error"), "\(result.output)")
    }

    @Test func ffmpegDecodesEveryFrameItReceives() throws {
        let media = try #require(Self.media, "ffmpeg must be installed to make the test media (apt-get install ffmpeg)")
        let harness = try RelayHarness(media: .file(media))
        defer { harness.stop() }
        let url = "http://127.0.0.1:\(harness.port)\(RelayHarness.path(RelayHarness.contentID(52)))"
        let result = try run(ffmpegPath, ["-hide_banner", "-nostdin", "-v", "error", "-i", url, "-t", "6", "-f", "null", "-"])
        #expect(result.status == 0)
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "decode errors: \(result.output)")
    }
}
