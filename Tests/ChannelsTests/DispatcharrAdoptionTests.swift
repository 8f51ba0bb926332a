import Channels
import Foundation
import Store
import Testing

/// Channels Dispatcharr manages, adopted on each sync: created, kept in
/// acerelay's own order, grown, and removed when Dispatcharr stops managing them.
@Suite struct DispatcharrAdoptionTests {
    typealias Rig = ChannelServiceTests.Rig
    static let (a, b, c) = (ChannelServiceTests.a, ChannelServiceTests.b, ChannelServiceTests.c)

    static func draft(_ id: Int, _ name: String, _ sources: [(String, Int)]) -> ChannelDraft {
        ChannelDraft(name: name, groupTitle: "Sports", origin: .dispatcharr, dispatcharrChannelID: id,
                     sources: sources.map { ChannelSourceRecord(contentID: $0.0, dispatcharrStreamID: $0.1) })
    }

    @Test func aManagedChannelIsCreatedThenKeptInItsScoredOrderAndGrown() async throws {
        let rig = try Rig()
        defer { try? FileManager.default.removeItem(atPath: rig.directory) }
        var summary = try await rig.service.adoptDispatcharrChannels([Self.draft(7, "Match", [(Self.a, 1), (Self.b, 2)])])
        #expect(summary.created == 1)
        let channel = try #require(try await rig.service.channels().first)
        #expect(channel.record.origin == .dispatcharr)
        #expect(channel.record.dispatcharrChannelID == 7)
        #expect(channel.sources.map(\.dispatcharrStreamID) == [1, 2])

        // b measures far better: acerelay puts it first, and a re-sync that still lists a, b keeps that order.
        await rig.service.record(contentID: Self.b, measurement: ChannelServiceTests.strong())
        await rig.service.record(contentID: Self.a, measurement: ChannelServiceTests.weak)
        #expect(try await rig.service.channel(id: channel.id)?.sources.map(\.contentID) == [Self.b, Self.a])
        summary = try await rig.service.adoptDispatcharrChannels([Self.draft(7, "Match", [(Self.a, 1), (Self.b, 2)])])
        #expect(summary == ChannelAdoptionSummary())
        #expect(try await rig.service.channel(id: channel.id)?.sources.map(\.contentID) == [Self.b, Self.a])

        // A stream added in Dispatcharr joins at the end; one removed there leaves.
        summary = try await rig.service.adoptDispatcharrChannels([Self.draft(7, "Match", [(Self.b, 2), (Self.c, 3)])])
        #expect(summary.updated == 1)
        let after = try #require(try await rig.service.channel(id: channel.id))
        #expect(after.sources.map(\.contentID) == [Self.b, Self.c])
        #expect(after.sources.map(\.dispatcharrStreamID) == [2, 3])
    }

    @Test func aChannelDispatcharrNoLongerManagesIsRemovedAndOthersAreLeftAlone() async throws {
        let rig = try Rig()
        defer { try? FileManager.default.removeItem(atPath: rig.directory) }
        _ = try await rig.service.create(ChannelDraft(name: "Mine", origin: .api, sources: [ChannelSourceRecord(contentID: Self.c)]))
        _ = try await rig.service.adoptDispatcharrChannels([Self.draft(1, "One", [(Self.a, 1)]), Self.draft(2, "Two", [(Self.b, 2)])])
        let summary = try await rig.service.adoptDispatcharrChannels([Self.draft(2, "Two", [(Self.b, 2)])])
        #expect(summary.removed == 1)
        let names = try await rig.service.channels().map(\.record.name).sorted()
        #expect(names == ["Mine", "Two"])
    }
}
