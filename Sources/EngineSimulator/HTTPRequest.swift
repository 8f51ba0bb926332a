import Foundation

/// One parsed HTTP/1.x request head.
struct HTTPRequest: Sendable {
    /// Request method, such as GET.
    var method: String
    /// Path without the query, as sent (engine ids are plain hex, nothing to decode).
    var path: String
    /// Query parameters, percent-decoded; the first occurrence of a name wins.
    var query: [String: String]
    /// Header fields with lowercased names; repeated fields joined with ", ".
    var headers: [String: String]
    /// Whether the request is HTTP/1.1 (chunked responses allowed).
    var isHTTP11: Bool

    /// Whether the client keeps the connection open after the response (HTTP/1.1 default).
    var keepAlive: Bool {
        let tokens = (headers["connection"] ?? "").lowercased().split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }
        return isHTTP11 ? !tokens.contains("close") : tokens.contains("keep-alive")
    }

    /// Whether the client wants the head only.
    var isHead: Bool { method == "HEAD" }

    /// Path split on "/", without empty components.
    var pathComponents: [Substring] { path.split(separator: "/") }

    /// Parses a request head (request line and header fields, without the blank line).
    ///
    /// - Returns: nil when the head is not a well-formed HTTP/1.0 or 1.1 request.
    init?(head: String) {
        var lines = head.components(separatedBy: "\r\n")
        // RFC 9112 §2.2: a server should ignore at least one empty line before the request line.
        while lines.first == "" { lines.removeFirst() }
        guard let requestLine = lines.first else { return nil }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy({ $0.isUppercase }) else { return nil }
        switch parts[2] {
        case "HTTP/1.1": isHTTP11 = true
        case "HTTP/1.0": isHTTP11 = false
        default: return nil
        }
        var target = String(parts[1])
        if target.hasPrefix("http://"), let slash = target.dropFirst(7).firstIndex(of: "/") {
            target = String(target[slash...])
        }
        guard target.hasPrefix("/") else { return nil }
        method = String(parts[0])

        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex,
                  !line.hasPrefix(" "), !line.hasPrefix("\t") else { return nil }
            let name = line[..<colon]
            guard !name.contains(where: { $0 == " " || $0 == "\t" }) else { return nil }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            let key = name.lowercased()
            headers[key] = headers[key].map { "\($0), \(value)" } ?? value
        }
        self.headers = headers

        let pieces = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(pieces[0])
        var query: [String: String] = [:]
        if pieces.count == 2 {
            for pair in pieces[1].split(separator: "&") {
                let nameAndValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = Self.decode(nameAndValue[0])
                if query[name] == nil {
                    query[name] = nameAndValue.count == 2 ? Self.decode(nameAndValue[1]) : ""
                }
            }
        }
        self.query = query
    }

    private static func decode(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}

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

/// Builders for response heads and bodies.
enum HTTPResponse {
    /// A response head with Content-Length for a body of `bodyLength` bytes.
    static func head(
        status: Int, reason: String, contentType: String?, bodyLength: Int?, keepAlive: Bool,
        extraFields: [(String, String)] = []
    ) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(reason)\r\nServer: acestream-engine-sim\r\n"
        if let contentType { text += "Content-Type: \(contentType)\r\n" }
        if let bodyLength { text += "Content-Length: \(bodyLength)\r\n" }
        for (name, value) in extraFields { text += "\(name): \(value)\r\n" }
        text += "Connection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n"
        return Array(text.utf8)
    }

    /// A whole response: head plus body (the body is left out for HEAD requests).
    static func complete(
        status: Int, reason: String, contentType: String, body: String, keepAlive: Bool, headOnly: Bool,
        extraFields: [(String, String)] = []
    ) -> [UInt8] {
        let bodyBytes = Array(body.utf8)
        var bytes = head(
            status: status, reason: reason, contentType: contentType, bodyLength: bodyBytes.count,
            keepAlive: keepAlive, extraFields: extraFields)
        if !headOnly { bytes += bodyBytes }
        return bytes
    }

    /// Appends one chunk of chunked transfer coding: size line, data, CRLF.
    static func appendChunk(_ data: [UInt8], to frame: inout [UInt8]) {
        frame.append(contentsOf: String(data.count, radix: 16).utf8)
        frame.append(contentsOf: [13, 10])
        frame.append(contentsOf: data)
        frame.append(contentsOf: [13, 10])
    }

    /// The last chunk of a chunked body, with no trailers.
    static let lastChunk: [UInt8] = Array("0\r\n\r\n".utf8)
}
