import FuzzSupport
import StreamFacts

// The first byte picks the parser: the collector over TS packets (sync bytes
// forced, so the fuzzer spends its time past them), or one header parser on the rest.
FuzzEntryPoint.run { input in
    guard let first = input.first else { return }
    let rest = UnsafeRawBufferPointer(rebasing: input.dropFirst())
    switch first % 10 {
    case 0:
        var packets = Array(rest)
        for start in stride(from: 0, to: packets.count, by: 188) { packets[start] = 0x47 }
        let collector = StreamFactsCollector()
        packets.withUnsafeBytes { collector.consume($0) }
        _ = collector.facts
        _ = collector.isComplete
    case 1: _ = H264SPS(nalUnit: Array(rest))
    case 2: _ = HEVCSPS(nalUnit: Array(rest))
    case 3: _ = PMT(section: rest)
    case 4: _ = PAT.firstProgramMapPID(section: rest)
    case 5: _ = AC3Header(rest)
    case 6: _ = ADTSHeader(rest)
    case 7: _ = LOASFrame(rest)
    case 8: _ = MPEGAudioHeader(rest)
    default:
        _ = MPEGVideoSequenceHeader(afterStartCode: rest)
        _ = PESHeader(rest)
    }
}
