import Foundation
import Store
import Testing
@testable import Streams
import Clocks

/// Streams other proxies reported are not the relay's to close: a looping one
/// must be stopped on its engine, as the orchestrator does.
@Suite struct LoopDetectorExternalStreamTests {
    @Test func aLoopingStreamOfAnotherProxyIsStoppedAndTheRelaysOwnIsClosed() async throws {
        let rig = try LoopDetectorTests.Rig(threshold: 60)
        defer { try? FileManager.default.removeItem(atPath: rig.directory) }
        let key = String(format: "%040x", 7)
        let id = StreamRecord.streamID(key: key, playbackSessionID: "p")
        let stream = StreamRecord(id: id, keyType: "content_id", key: key, containerID: "e", playbackSessionID: "p",
                                  commandURL: "http://127.0.0.1:1/ace/cmd/x/p", origin: .external)
        try await rig.store.saveStream(stream)
        var sample = StatSample(at: rig.clock.now)
        sample.livepos = StatSample.Livepos(liveLast: rig.now - 61)
        rig.detector.observe(stream: stream, sample: sample)
        try await rig.report(8, liveLast: rig.now - 61)
        await rig.detector.check()
        #expect(rig.closed.stopped.withLock { $0 } == [id], "only the other proxy's stream is stopped on its engine")
        #expect(Set(try await rig.store.streams(status: .ended).map(\.key)) == [key, String(format: "%040x", 8)])
    }
}
