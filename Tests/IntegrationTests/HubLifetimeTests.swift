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
}
