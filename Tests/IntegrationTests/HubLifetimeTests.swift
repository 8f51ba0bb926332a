import Foundation
import Testing
@testable import RelayCore

/// A closed hub must be freed with everything it owns (ingest, aligner, join
/// points, curl transfers): under churn a relay opens thousands of hubs.
@Suite(.serialized) struct HubLifetimeTests {
    @Test func aHubClosedAfterItsGracePeriodIsFreed() throws {
        let harness = try RelayHarness { $0.gracePeriod = 0.2 }
        defer { harness.stop() }
        let id = RelayHarness.contentID(70)
        weak var hub: Hub?
        do {
            let player = try harness.player(id)
            #expect(try player.readHead().status == 200)
            #expect(player.readBody(count: 188 * 100).count == 188 * 100)
            hub = harness.relay.registry.all.first
            #expect(hub != nil)
            player.waitForCloseLocally()
        }
        #expect(harness.waitForEvent(timeout: 10) { event in
            if case .hubClosed(let closed, .idle) = event { return closed.content.value == id }
            return false
        }, "the hub closes after its grace period")
        #expect(eventually(timeout: 5) { hub == nil }, "nothing may keep a closed hub alive")
    }

    @Test func aHubClosedUnderItsPlayersIsFreedOnceTheyAreGone() throws {
        let harness = try RelayHarness { $0.gracePeriod = 30 }
        defer { harness.stop() }
        let id = RelayHarness.contentID(71)
        weak var hub: Hub?
        do {
            let players = try (0..<3).map { _ in try harness.player(id) }
            for player in players {
                #expect(try player.readHead().status == 200)
                #expect(player.readBody(count: 188 * 100).count == 188 * 100)
            }
            hub = harness.relay.registry.all.first
            #expect(hub != nil)
            // The control plane's word (a looping broadcast): the hub fails while players stream.
            let key = try #require(ContentKey(kind: .contentID, value: id))
            #expect(harness.relay.closeHub(for: key, refusal: ContentRefusal(status: 422, code: "stream_looping", message: "looping")))
            for player in players { player.waitForCloseLocally() }
        }
        #expect(harness.waitForEvent(timeout: 10) { event in
            if case .hubClosed(let closed, .failed) = event { return closed.content.value == id }
            return false
        }, "the hub fails at once, grace period or not")
        #expect(eventually(timeout: 5) { hub == nil }, "nothing may keep a failed hub alive")
    }
}
