import FuzzSupport
import RelayCore

// A player's request head, as ClientConnection reads it: in pieces of any size
// (the first byte picks the piece size), then routed on path and query.
FuzzEntryPoint.run { input in
    guard let first = input.first else { return }
    let piece = Int(first % 64) + 1
    var rest = UnsafeRawBufferPointer(rebasing: input.dropFirst())
    var parser = HTTPRequestParser()
    while !rest.isEmpty {
        let take = min(piece, rest.count)
        do {
            if let head = try parser.append(UnsafeRawBufferPointer(rebasing: rest[..<take])) {
                _ = head.path
                _ = head.queryItems
                _ = head.query("id")
                _ = head.header("User-Agent")
                return
            }
        } catch {
            return
        }
        rest = UnsafeRawBufferPointer(rebasing: rest[take...])
    }
}
