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
