import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import RelayCore

@Suite struct StreamHistoryTests {
    private func allocatedBytes(_ fd: Int32) -> Int {
        var info = stat()
        fstat(fd, &info)
        return Int(info.st_blocks) * 512
    }

    @Test func appendsAtGrowingOffsetsAndReadsBack() throws {
        let history = try StreamHistory(name: "t", retainedBytes: 8 << 20)
        let block = [UInt8](repeating: 0x47, count: 188 * 10)
        var offset: UInt64 = 0
        for _ in 0..<5 {
            try block.withUnsafeBytes { try history.append($0, at: offset) }
            offset += UInt64(block.count)
            history.publish(upTo: offset)
        }
        #expect(history.end == offset)
        #expect(history.oldestReadable == 0)
        var back = [UInt8](repeating: 0, count: 188)
        #expect(pread(history.fd, &back, 188, off_t(188 * 33)) == 188)
        #expect(back[0] == 0x47)
    }

    @Test func punchesWholeBlocksFarBehindTheLiveEdge() throws {
        let retained: UInt64 = 8 << 20
        let history = try StreamHistory(name: "t", retainedBytes: retained)
        let chunk = [UInt8](repeating: 0x47, count: 1 << 20)
        var offset: UInt64 = 0
        for _ in 0..<20 {
            try chunk.withUnsafeBytes { try history.append($0, at: offset) }
            offset += UInt64(chunk.count)
            history.publish(upTo: offset)
        }
        // 20 MiB written, 8 MiB retained: readable from 12 MiB; punched below 10 MiB (one block of slack, 2 MiB-aligned).
        #expect(history.oldestReadable == offset - retained)
        #expect(history.residentBytes == offset - (10 << 20))
        #expect(allocatedBytes(history.fd) <= Int(offset - (10 << 20)) + 4096)
        // Bytes inside the retained window are intact.
        var byte: UInt8 = 0
        #expect(pread(history.fd, &byte, 1, off_t(offset - retained)) == 1)
        #expect(byte == 0x47)
    }
}
