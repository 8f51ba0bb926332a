import Foundation
import RelayCore
import Testing
@testable import ControlAPI

/// The live updates' per-client queue, without a socket: bounded, newest kept, drops counted.
@Suite struct LiveUpdatesTests {
    static let hub = HubID(content: ContentKey(kind: .contentID, value: "0123456789abcdef0123456789abcdef01234567")!, serial: 1)

    @Test func aClientThatNeverReadsKeepsOnlyTheNewestMessagesAndTheRestAreCountedAsDropped() async throws {
        let live = LiveUpdates()
        let (id, messages) = live.addClient()
        let published = 200
        for _ in 0..<published { live.observe(.playerJoined(Self.hub)) }
        #expect(live.droppedMessages == UInt64(published - LiveUpdates.clientQueueCapacity))
        live.remove(id)
        var received: [LiveMessage] = []
        for await message in messages { received.append(message) }
        #expect(received.count == LiveUpdates.clientQueueCapacity)
        let last = try #require(received.last.flatMap { try JSONSerialization.jsonObject(with: $0.json) as? [String: Any] })
        #expect(last["type"] as? String == "player_joined")
        #expect(last["players"] as? Int == published)
        #expect(live.clientCount == 0)
    }

    @Test func aSecondClientIsNotHeldUpByAStuckOne() async throws {
        let live = LiveUpdates()
        let (stuck, _) = live.addClient()
        let (reader, messages) = live.addClient()
        live.observe(.hubStarted(Self.hub))
        for _ in 0..<500 { live.observe(.playerJoined(Self.hub)) }
        live.observe(.playerLeft(Self.hub))
        live.remove(reader)
        var last: [String: Any]?
        for await message in messages { last = try JSONSerialization.jsonObject(with: message.json) as? [String: Any] }
        #expect(last?["type"] as? String == "player_left")
        #expect(last?["players"] as? Int == 499)
        live.remove(stuck)
    }

    @Test func hubsThatFailUnderTheirPlayersLeaveNoCountBehind() {
        let live = LiveUpdates()
        for serial in 1...100 {
            let hub = HubID(content: Self.hub.content, serial: UInt64(serial))
            live.observe(.hubStarted(hub))
            live.observe(.playerJoined(hub))
            live.observe(.playerJoined(hub))
            // A failing hub announces its close first; its players leave as they hear it.
            live.observe(.hubClosed(hub, reason: .failed(code: "engine_failed", message: "gone")))
            live.observe(.playerLeft(hub))
            live.observe(.playerLeft(hub))
        }
        #expect(live.trackedHubCount == 0)
    }

    @Test func finishingEndsEveryStreamAndRefusesNewClients() async {
        let live = LiveUpdates()
        let (_, first) = live.addClient()
        live.finishAll()
        var count = 0
        for await _ in first { count += 1 }
        #expect(count == 0)
        let (_, late) = live.addClient()
        for await _ in late { count += 1 }
        #expect(count == 0)
        #expect(live.clientCount == 0)
    }
}
