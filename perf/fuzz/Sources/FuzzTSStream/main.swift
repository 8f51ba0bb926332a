import FuzzSupport
import RelayCore

// Engine bytes through the ingest path: the aligner in reads of any size (the
// first byte picks it), every run it emits into the inspector. The aligner's
// promise is checked, not only its survival: runs are whole packets, each on sync.
FuzzEntryPoint.run { input in
    guard let first = input.first else { return }
    let read = (Int(first) + 1) * 37
    let aligner = TSAligner(maxChunk: 4 * 188)
    let inspector = TSInspector()
    var offset: UInt64 = 0
    let emit = { (run: UnsafeRawBufferPointer) in
        precondition(run.count % 188 == 0, "aligner emitted \(run.count) bytes, not whole packets")
        for start in stride(from: 0, to: run.count, by: 188) {
            precondition(run[start] == 0x47, "aligner emitted a packet without its sync byte")
        }
        _ = inspector.inspect(run, at: offset)
        offset += UInt64(run.count)
    }
    var rest = UnsafeRawBufferPointer(rebasing: input.dropFirst())
    while !rest.isEmpty {
        let take = min(read, rest.count)
        aligner.feed(UnsafeRawBufferPointer(rebasing: rest[..<take]), emit: emit)
        rest = UnsafeRawBufferPointer(rebasing: rest[take...])
    }
    aligner.finish(emit: emit)
}
