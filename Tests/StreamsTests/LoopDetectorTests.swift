import Clocks
import Foundation
import Logging
import RelayCore
import Store
import Locking
import Testing
@testable import Streams

@Suite struct LoopDetectorTests {
    final class Closed: Sendable {
        let keys = Locked<[String]>([])
        /// Streams of other proxies the detector asked to stop.
        let stopped = Locked<[String]>([])
        var all: [String] { keys.withLock { $0 } }
    }

    struct Rig {
        let store: Store
        let clock: ManualClock
        let detector: LoopDetector
        let closed: Closed
        let directory: String

        init(threshold: Int = 60, retention: Int = 0, enabled: Bool = true) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("acerelay-loop-\(UUID().uuidString)").path
            store = try Store(directory: directory)
            clock = ManualClock(Date(timeIntervalSince1970: 1_800_000_000))
            let closed = Closed()
            self.closed = closed
            detector = LoopDetector(store: store, config: LoopDetectionConfig(enabled: enabled, thresholdSeconds: threshold,
                                                                              checkIntervalSeconds: 10, retentionMinutes: retention),
                                    clock: clock, logger: Logger(label: "test"),
                                    stopExternal: { stream in closed.stopped.withLock { $0.append(stream.id) } }) { key, _ in
                closed.keys.withLock { $0.append(key.value) }
            }
        }

        /// A started stream whose engine reports `liveLast` and `downloaded` now.
        func report(_ n: Int, liveLast: Int64, downloaded: Int64 = 1_000) async throws {
            let key = String(format: "%040x", n)
            let stream = StreamRecord(id: "\(key)|s", keyType: "content_id", key: key, containerID: "e", playbackSessionID: "s")
            try await store.saveStream(stream)
            var sample = StatSample(at: clock.now)
            sample.downloaded = downloaded
            sample.livepos = StatSample.Livepos(liveLast: liveLast)
            // What the stats collector does after each poll.
            detector.observe(stream: stream, sample: sample)
        }

        var now: Int64 { Int64(clock.now.timeIntervalSince1970) }
        func content(_ n: Int) -> ContentKey { ContentKey(kind: .contentID, value: String(format: "%040x", n))! }
    }

    @Test func aStaleLiveEdgeIsLoopingAndRefused() async throws {
        let rig = try Rig(threshold: 60)
        defer { try? FileManager.default.removeItem(atPath: rig.directory) }
        try await rig.report(1, liveLast: rig.now - 30)
        try await rig.report(2, liveLast: rig.now - 61)
        await rig.detector.check()
        #expect(rig.closed.all == [String(format: "%040x", 2)])
        #expect(rig.detector.refusal(for: rig.content(1)) == nil)
        let refusal = try #require(rig.detector.refusal(for: rig.content(2)))
        #expect(refusal.status == 422)
        #expect(refusal.code == "stream_looping")
        #expect(try await rig.store.streams(status: .ended).map(\.key) == [String(format: "%040x", 2)])
        #expect(rig.detector.detections == 1)
    }

    @Test func aFrozenLiveEdgeWithNoNewDataIsLoopingButMovingDataIsNot() async throws {
        let rig = try Rig(threshold: 60)
        defer { try? FileManager.default.removeItem(atPath: rig.directory) }
        let edge = rig.now
        try await rig.report(3, liveLast: edge, downloaded: 5_000)
        try await rig.report(4, liveLast: edge, downloaded: 5_000)
        await rig.detector.check()
        for step in 1...7 {
            rig.clock.advance(10)
            // 3 stands still in every way; 4's edge stands still but data keeps coming.
            try await rig.report(3, liveLast: edge, downloaded: 5_000)
            try await rig.report(4, liveLast: rig.now - 1, downloaded: 5_000 + Int64(step) * 1_000)
            await rig.detector.check()
        }
        #expect(rig.closed.all == [String(format: "%040x", 3)])
    }

    @Test func implausibleTimestampsAreIgnoredAndADisabledDetectorDoesNothing() async throws {
        let rig = try Rig(threshold: 60)
        defer { try? FileManager.default.removeItem(atPath: rig.directory) }
        try await rig.report(5, liveLast: 1_000)  // 1970: engine noise
        await rig.detector.check()
        #expect(rig.closed.all.isEmpty)
        let off = try Rig(threshold: 60, enabled: false)
        defer { try? FileManager.default.removeItem(atPath: off.directory) }
        try await off.report(6, liveLast: off.now - 10_000)
        await off.detector.check()
        #expect(off.closed.all.isEmpty)
    }

    @Test func entriesExpireAfterTheRetentionAndCanBeClearedAndKeptAcrossRestarts() async throws {
        let rig = try Rig(threshold: 60, retention: 5)
        defer { try? FileManager.default.removeItem(atPath: rig.directory) }
        try await rig.report(7, liveLast: rig.now - 100)
        await rig.detector.check()
        #expect(rig.detector.looping.count == 1)
        // A new detector on the same store (a restart) knows the entry.
        let restarted = LoopDetector(store: rig.store, config: LoopDetectionConfig(enabled: true), clock: rig.clock, logger: Logger(label: "test"), stopExternal: { _ in }) { _, _ in }
        await restarted.load()
        #expect(restarted.refusal(for: rig.content(7)) != nil)
        rig.clock.advance(5 * 60)
        #expect(rig.detector.refusal(for: rig.content(7)) == nil, "expired after 5 minutes")
        #expect(rig.detector.looping.isEmpty)
        #expect(await rig.detector.remove(String(format: "%040x", 7)) == false)
    }
}
