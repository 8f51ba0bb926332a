import Testing
@testable import RelayCore

/// What the ingest pipeline counts of the engine's packets, apart from the relay's own keepalives.
@Suite struct IngestPipelineTests {
    @Test func keepalivesAreStoredButNotCountedAsTheEnginesPacketsOrNulls() throws {
        let loop = EventLoop()
        let history = try StreamHistory(name: "ingest", retainedBytes: 8 << 20)
        let pipeline = IngestPipeline(history: history, loop: loop, configuration: RelayConfiguration())
        defer { pipeline.stop() }
        var builder = TSBuilder()
        var stream = builder.gop(count: 10)
        stream += TSPacket.null + TSPacket.null
        _ = try stream.withUnsafeBytes { try pipeline.ingest($0) }
        // The aligner holds the last packet until the next confirms its sync byte; the end releases it.
        pipeline.finish()
        pipeline.appendKeepalive()
        pipeline.appendKeepalive()
        #expect(pipeline.writeOffset == UInt64(stream.count + 2 * TSPacket.size), "keepalives go into the history")
        #expect(pipeline.inspector.packets == UInt64(stream.count / TSPacket.size), "but are not the engine's packets")
        #expect(pipeline.inspector.nullPackets == 2, "only the engine's own stuffing counts")
        #expect(pipeline.factReader.packetsSeen == stream.count / TSPacket.size, "the facts reader sees what the inspector sees")
    }
}
