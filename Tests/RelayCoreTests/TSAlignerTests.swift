import Testing
@testable import RelayCore

@Suite struct TSAlignerTests {
    private func align(_ chunks: [[UInt8]], finish: Bool = false) -> (out: [UInt8], aligner: TSAligner) {
        let aligner = TSAligner(maxChunk: 4096)
        var out: [UInt8] = []
        for chunk in chunks {
            chunk.withUnsafeBytes { aligner.feed($0) { out += $0 } }
        }
        if finish { aligner.finish { out += $0 } }
        return (out, aligner)
    }

    @Test func packetsSplitAtEveryBoundaryComeOutWhole() {
        var builder = TSBuilder()
        let stream = builder.gop(count: 40)
        for split in [1, 7, 187, 188, 189, 500, 1000] {
            var chunks: [[UInt8]] = []
            var i = 0
            while i < stream.count { chunks.append(Array(stream[i..<min(i + split, stream.count)])); i += split }
            let (out, aligner) = align(chunks, finish: true)
            #expect(out == stream, "split \(split)")
            #expect(aligner.discardedBytes == 0)
        }
    }

    @Test func lastPacketIsHeldUntilItsSuccessorConfirmsIt() {
        var builder = TSBuilder()
        let stream = builder.gop(count: 3)
        let (out, _) = align([stream])
        #expect(out == Array(stream.dropLast(188)))
    }

    @Test func leadingGarbageIsDroppedAndCounted() {
        var builder = TSBuilder()
        let stream = builder.gop(count: 10)
        let garbage: [UInt8] = Array(repeating: 0x13, count: 77)
        let (out, aligner) = align([garbage + stream], finish: true)
        #expect(out == stream)
        #expect(aligner.discardedBytes == 77)
    }

    /// Continuity errors in whole aligned packets: a packet whose counter is not its PID's previous + 1.
    private func continuityErrors(_ bytes: [UInt8]) -> Int {
        var last: [UInt16: UInt8] = [:]
        var errors = 0
        for start in stride(from: 0, to: bytes.count - 187, by: 188) {
            let pid = UInt16(bytes[start + 1] & 0x1F) << 8 | UInt16(bytes[start + 2])
            let cc = bytes[start + 3] & 0x0F
            if let previous = last[pid], cc != (previous + 1) & 0x0F { errors += 1 }
            last[pid] = cc
        }
        return errors
    }

    @Test func garbageBeforeARealPacketCostsNoPacket() {
        var builder = TSBuilder()
        let packets = (0..<12).map { _ in builder.packet(pid: 0x100) }
        let garbage: [UInt8] = Array(repeating: 0xAB, count: 1_000)
        let stream = packets[0..<6].flatMap { $0 } + garbage + packets[6...].flatMap { $0 }
        // Whole, and cut at every interesting place: inside the garbage, at its edges, inside packets.
        for split in [stream.count, 1, 100, 188, 189, 700, 1_128, 1_129] {
            var chunks: [[UInt8]] = []
            var i = 0
            while i < stream.count { chunks.append(Array(stream[i..<min(i + split, stream.count)])); i += split }
            let (out, aligner) = align(chunks, finish: true)
            #expect(out.count / 188 == 12, "split \(split)")
            #expect(out == packets.flatMap { $0 }, "split \(split)")
            #expect(continuityErrors(out) == 0, "split \(split)")
            #expect(aligner.discardedBytes == 1_000, "split \(split)")
            #expect(aligner.resyncs == 1, "split \(split)")
        }
    }

    @Test func garbageAfterTheLastPacketBeforeTheEndKeepsThatPacket() {
        var builder = TSBuilder()
        let packets = (0..<6).map { _ in builder.packet(pid: 0x100) }
        let (out, aligner) = align([packets.flatMap { $0 } + Array(repeating: 0x13, count: 50)], finish: true)
        #expect(out == packets.flatMap { $0 })
        #expect(aligner.discardedBytes == 50)
    }

    @Test func bytesInsertedInsideAPacketKeepEveryOtherPacketAndTheAlignment() {
        var builder = TSBuilder()
        let packets = (0..<12).map { _ in builder.packet(pid: 0x100) }
        var stream: [UInt8] = []
        for (i, p) in packets.enumerated() {
            if i == 5 {
                stream += p[0..<100] + Array(repeating: 0xAB, count: 33) + p[100...]
            } else {
                stream += p
            }
        }
        let (out, aligner) = align([stream], finish: true)
        // An insertion inside packet 5 cannot be told from one after it: the 188 bytes from its
        // sync byte are passed (header intact), the 33 bytes after them are dropped.
        #expect(out.count == 12 * 188)
        #expect(Array(out[0..<5 * 188]) == packets[0..<5].flatMap { $0 })
        #expect(Array(out[5 * 188..<5 * 188 + 100]) == Array(packets[5][0..<100]))
        #expect(Array(out[(6 * 188)...]) == packets[6...].flatMap { $0 })
        #expect(aligner.resyncs == 1)
        #expect(aligner.discardedBytes == 33)
    }

    @Test func bytesLostInsideAPacketDropOnlyTheTornPacket() {
        var builder = TSBuilder()
        let packets = (0..<12).map { _ in builder.packet(pid: 0x100) }
        var stream: [UInt8] = []
        for (i, p) in packets.enumerated() {
            stream += i == 5 ? Array(p[0..<100]) + Array(p[150...]) : p
        }
        let (out, aligner) = align([stream], finish: true)
        let expected = packets.enumerated().filter { $0.offset != 5 }.flatMap { $0.element }
        #expect(out == expected)
        #expect(aligner.resyncs == 1)
        #expect(aligner.discardedBytes == 138)
    }

    @Test func garbageOnlyInputNeverEmits() {
        let noise = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }.map { $0 == 0x47 ? 0x46 : $0 }
        let (out, aligner) = align([noise], finish: true)
        #expect(out.isEmpty)
        #expect(aligner.discardedBytes == 10_000)
    }

    @Test func inputLargerThanTheWorkBufferIsSplit() {
        var builder = TSBuilder()
        let stream = builder.gop(count: 200)  // > 4096-byte chunk limit
        let (out, _) = align([stream], finish: true)
        #expect(out == stream)
    }
}
