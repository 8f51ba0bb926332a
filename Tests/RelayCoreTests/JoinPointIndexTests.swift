import Testing
@testable import RelayCore

@Suite struct JoinPointIndexTests {
    /// Appends and publishes `count` bytes of packets at `offset`; returns the new end.
    private func grow(_ history: StreamHistory, from offset: UInt64, by count: Int) throws -> UInt64 {
        let block = [UInt8](repeating: 0x47, count: count)
        try block.withUnsafeBytes { try history.append($0, at: offset) }
        history.publish(upTo: offset + UInt64(count))
        return offset + UInt64(count)
    }

    @Test func theLatestJoinPointIsTheNewestPublishedOne() throws {
        let history = try StreamHistory(name: "jp", retainedBytes: 8 << 20)
        #expect(history.latestJoinPoint == nil)
        var end = try grow(history, from: 0, by: 188 * 100)
        history.recordJoinPoint(JoinPoint(offset: 188 * 10, pcr: 27_000_000, time: 1))
        history.recordJoinPoint(JoinPoint(offset: 188 * 50, pcr: 54_000_000, time: 2))
        #expect(history.latestJoinPoint == JoinPoint(offset: 188 * 50, pcr: 54_000_000, time: 2))
        // Recorded as its packets are appended, before they are published: not offered yet.
        history.recordJoinPoint(JoinPoint(offset: end, pcr: nil, time: 3))
        #expect(history.latestJoinPoint?.offset == 188 * 50)
        end = try grow(history, from: end, by: 188)
        #expect(history.latestJoinPoint?.offset == 188 * 100)
        #expect(history.joinPointCount == 3)
    }

    @Test func joinPointsInARangeAreListedOldestFirst() throws {
        let history = try StreamHistory(name: "jp", retainedBytes: 8 << 20)
        _ = try grow(history, from: 0, by: 188 * 1000)
        for n in stride(from: 0, to: 1000, by: 100) {
            history.recordJoinPoint(JoinPoint(offset: UInt64(188 * n), pcr: nil, time: Double(n)))
        }
        let middle: [UInt64] = history.joinPoints(in: 188 * 150..<188 * 500).map(\.offset)
        #expect(middle == [37_600, 56_400, 75_200])
        let first: [UInt64] = history.joinPoints(in: 0..<1).map(\.offset)
        #expect(first == [0])
        #expect(history.joinPoints(in: 188 * 2000..<188 * 3000).isEmpty)
        // An offset going backwards is not a join point of this history.
        history.recordJoinPoint(JoinPoint(offset: 188 * 50, pcr: nil, time: 99))
        #expect(history.joinPointCount == 10)
    }

    @Test func joinPointsLeaveTheIndexAsTheRetainedWindowPassesThem() throws {
        let history = try StreamHistory(name: "jp", retainedBytes: 4 << 20)
        let mb = 1 << 20
        var end: UInt64 = 0
        for _ in 0..<8 {
            history.recordJoinPoint(JoinPoint(offset: end, pcr: nil, time: 0))
            end = try grow(history, from: end, by: mb)
        }
        // 8 MB written, 4 MB retained: the join points at 0..3 MB are gone.
        #expect(history.oldestReadable == 4 << 20)
        #expect(history.joinPointCount == 4)
        let kept: [UInt64] = history.joinPoints(in: 0..<end).map(\.offset)
        let expected: [UInt64] = (4..<8).map { UInt64($0 * mb) }
        #expect(kept == expected)
        #expect(history.latestJoinPoint?.offset == UInt64(7 * mb))
    }

    @Test func theIndexKeepsOnlyItsCapacityOfJoinPoints() throws {
        let history = try StreamHistory(name: "jp", retainedBytes: 8 << 20, joinPointCapacity: 4)
        _ = try grow(history, from: 0, by: 188 * 100)
        for n in 0..<10 { history.recordJoinPoint(JoinPoint(offset: UInt64(188 * n), pcr: nil, time: 0)) }
        #expect(history.joinPointCount == 4)
        let kept: [UInt64] = history.joinPoints(in: 0..<18_800).map(\.offset)
        let expected: [UInt64] = (6..<10).map { UInt64(188 * $0) }
        #expect(kept == expected)
    }
}
