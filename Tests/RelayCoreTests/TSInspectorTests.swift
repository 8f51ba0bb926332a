import Testing
@testable import RelayCore

@Suite struct TSInspectorTests {
    @Test func nullPacketsAreCountedAmongThePacketsInspected() {
        var builder = TSBuilder()
        var stream = builder.gop(count: 6)
        let stuffing = 4
        for _ in 0..<stuffing { stream += TSPacket.null }
        let inspector = TSInspector()
        stream.withUnsafeBytes { _ = inspector.inspect($0, at: 0) }
        #expect(inspector.nullPackets == UInt64(stuffing))
        #expect(inspector.packets == UInt64(stream.count / TSPacket.size))
    }

    @Test func joinPointIsThePATBeforeAKeyFrame() {
        var builder = TSBuilder()
        let first = builder.gop(count: 20)
        let second = builder.gop(count: 20)
        let inspector = TSInspector()
        (first + second).withUnsafeBytes { _ = inspector.inspect($0, at: 1_000) }
        #expect(inspector.latestJoinPoint == 1_000 + UInt64(first.count))
        #expect(inspector.continuityErrors == 0)
    }

    @Test func withoutRandomAccessFlagsEveryPATIsAJoinPoint() {
        var builder = TSBuilder()
        var stream = builder.pat() + builder.pmt()
        for _ in 0..<5 { stream += builder.packet(pid: TSBuilder.videoPID) }
        let secondPAT = stream.count
        stream += builder.pat() + builder.pmt()
        let inspector = TSInspector()
        stream.withUnsafeBytes { _ = inspector.inspect($0, at: 0) }
        #expect(inspector.latestJoinPoint == UInt64(secondPAT))
    }

    @Test func continuityJumpsAreCountedButDuplicatesAndNullsAreNot() {
        var builder = TSBuilder()
        var packets = (0..<10).map { _ in builder.packet(pid: 0x100) }
        packets.insert(packets[3], at: 4)  // an allowed duplicate
        packets.remove(at: 8)              // a lost packet
        packets.insert(TSPacket.null, at: 2)
        let inspector = TSInspector()
        packets.flatMap { $0 }.withUnsafeBytes { _ = inspector.inspect($0, at: 0) }
        #expect(inspector.continuityErrors == 1)
    }

    @Test func bitrateComesFromThePCR() {
        var builder = TSBuilder()
        // 100 packets per 0.1 s of PCR time = 1,504,000 bit/s.
        var stream: [UInt8] = []
        for step in 0..<30 {
            stream += builder.packet(pid: TSBuilder.videoPID, pcr: UInt64(step) * 2_700_000)
            for _ in 0..<99 { stream += builder.packet(pid: TSBuilder.videoPID) }
        }
        let inspector = TSInspector()
        stream.withUnsafeBytes { _ = inspector.inspect($0, at: 0) }
        #expect(abs(inspector.bitsPerSecond - 1_504_000) < 10_000)
    }
}
