/// Reads request heads off one connection, keeping bytes that arrive past a head for the next one.
struct HTTPRequestReader {
    /// What the next request was.
    enum Outcome {
        /// A request; its body, if it had one, was read and dropped.
        case request(HTTPRequest)
        /// The peer closed, the connection was aborted, or it stayed idle too long.
        case closed
        /// The bytes were not an HTTP/1.x request: answer 400 and close.
        case malformed
        /// The head or body is over the size limit: answer 431 or 413 and close.
        case tooLarge
    }

    /// Longest request head accepted.
    static let maximumHeadBytes = 16 * 1024
    /// Longest request body accepted (and dropped): the engine API has no bodies.
    static let maximumBodyBytes = 1024 * 1024

    private var pending: [UInt8] = []
    private var scratch = [UInt8](repeating: 0, count: 4096)

    /// Reads until one whole request head is in, then parses it.
    mutating func next(from connection: ClientConnection) -> Outcome {
        var searchFrom = 0
        while true {
            if let end = Self.headEnd(in: pending, from: searchFrom) {
                let head = String(decoding: pending[..<end], as: UTF8.self)
                pending.removeFirst(end + 4)
                guard let request = HTTPRequest(head: head) else { return .malformed }
                return dropBody(of: request, from: connection)
            }
            guard pending.count <= Self.maximumHeadBytes else { return .tooLarge }
            searchFrom = max(0, pending.count - 3)
            guard fill(from: connection) else { return .closed }
        }
    }

    /// Reads and drops the request's body so the next request starts in the right place.
    private mutating func dropBody(of request: HTTPRequest, from connection: ClientConnection) -> Outcome {
        if request.headers["transfer-encoding"] != nil { return .malformed }
        guard let lengthField = request.headers["content-length"] else { return .request(request) }
        guard let length = Int(lengthField), length >= 0 else { return .malformed }
        guard length <= Self.maximumBodyBytes else { return .tooLarge }
        var remaining = length
        while remaining > 0 {
            if pending.isEmpty, !fill(from: connection) { return .closed }
            let taken = min(remaining, pending.count)
            pending.removeFirst(taken)
            remaining -= taken
        }
        return .request(request)
    }

    private mutating func fill(from connection: ClientConnection) -> Bool {
        let n = scratch.withUnsafeMutableBytes { connection.receive(into: $0) }
        guard let n, n > 0 else { return false }
        pending.append(contentsOf: scratch[..<n])
        return true
    }

    private static func headEnd(in bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= 4 else { return nil }
        var i = start
        while i + 3 < bytes.count {
            if bytes[i] == 13, bytes[i + 1] == 10, bytes[i + 2] == 13, bytes[i + 3] == 10 { return i }
            i += 1
        }
        return nil
    }
}
