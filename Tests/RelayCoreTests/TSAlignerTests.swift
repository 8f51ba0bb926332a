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

    @Test func garbageInsideAPacketDropsOnlyTheTornPacket() {
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
        let expected = packets.enumerated().filter { $0.offset != 5 }.flatMap { $0.element }
        #expect(out == expected)
        #expect(aligner.resyncs == 1)
        #expect(out.count % 188 == 0)
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
