import EngineSimulator
import Foundation
import Testing
@testable import RelayCore

/// Rate-sensitive: runs alone so other suites' load does not blur the numbers.
@Suite(.serialized) struct SlowPlayerTests {
    @Test func stalledAndSlowPlayersAreSkippedOrDroppedWhileOthersKeepFullRate() throws {
        let bitrate = 4_000_000
        let harness = try RelayHarness(media: .synthetic(bitsPerSecond: bitrate)) { relay in
            relay.clientMaxLagSeconds = 2
            relay.clientSkipLimit = 2
            relay.workers = 1
        }
        defer { harness.stop() }
        let id = RelayHarness.contentID(30)
        let normal = try (0..<4).map { _ in try harness.player(id) }
        // Small receive buffers so the kernel cannot hide a stalled player for long.
        let stalled = try harness.player(id, receiveBuffer: 4096)
        let slow = try harness.player(id, receiveBuffer: 4096)
        for player in normal + [stalled, slow] { #expect(try player.readHead().status == 200) }

        let seconds = 14.0
        let byteRate = bitrate / 8
        let results = concurrently(6) { i -> Int in
            switch i {
            case 0..<4: return normal[i].drain(seconds: seconds).bytes
            case 4: usleep(UInt32(seconds * 1_000_000)); return 0  // never reads
            default: return slow.readThrottled(bytesPerSecond: byteRate / 10, seconds: seconds)
            }
        }
        // Normal players kept the stream rate (the first seconds include the join burst).
        for bytes in results[0..<4] {
            #expect(Double(bytes) >= 0.95 * Double(byteRate) * seconds, "normal player got \(bytes) bytes in \(seconds) s")
        }
        let hub = try #require(harness.hub(id))
        #expect(hub.skips >= 2, "lagging players skip forward")
        #expect(hub.drops >= 1, "a player that keeps lagging is dropped")
        #expect(stalled.waitForClose(timeout: 10), "the stalled player is dropped")
        #expect(harness.simulator.counters(for: id).sessionsStarted == 1)
    }
}
