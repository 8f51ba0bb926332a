import Foundation

/// A complete HTTP response.
public struct TestHTTPResponse: Sendable {
    public var status: Int
    /// Header fields, names lower-cased.
    public var headers: [String: String]
    /// The body as sent (de-chunked when it came chunked).
    public var body: [UInt8]

    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object; an empty dictionary otherwise, which fails the caller's expectations.
    public var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
    }
}

/// One-shot requests over a `TestHTTPConnection`.
public enum TestHTTP {
    /// GETs `path` on 127.0.0.1:`port` with `Connection: close`.
    public static func get(port: UInt16, _ path: String, timeout: Double = 5) throws -> TestHTTPResponse {
        let connection = try TestHTTPConnection(port: port)
        connection.sendRequest(path)
        return try readResponse(on: connection, timeout: timeout)
    }

    /// Any method, with an optional body (sent with its Content-Length and `contentType`),
    /// on a connection of its own that the server is asked to close.
    public static func request(_ method: String, port: UInt16, path: String, headers: [String] = [], body: [UInt8]? = nil,
                               contentType: String = "application/json", version: String = "1.1",
                               timeout: Double = 5) throws -> TestHTTPResponse {
        let connection = try TestHTTPConnection(port: port)
        var head = "\(method) \(path) HTTP/\(version)\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for field in headers { head += field + "\r\n" }
        if let body { head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n" }
        try connection.send(bytes: Array((head + "\r\n").utf8) + (body ?? []))
        return try readResponse(on: connection, timeout: timeout)
    }

    /// Reads one response: a Content-Length body, a chunked one, or one that ends at the close.
    public static func readResponse(on connection: TestHTTPConnection, timeout: Double = 5) throws -> TestHTTPResponse {
        let deadline = Date().addingTimeInterval(timeout)
        let head = try connection.readHead(before: deadline)
        var body: [UInt8] = []
        if let length = head.headers["content-length"].flatMap(Int.init) {
            while body.count < length {
                let piece = try connection.take(upTo: length - body.count, before: deadline)
                guard !piece.isEmpty else { throw TestHTTPError.closedEarly }
                body += piece
            }
        } else if head.headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            while true {
                guard let line = try connection.takeLine(before: deadline) else { throw TestHTTPError.closedEarly }
                guard let size = Int(line.split(separator: ";").first ?? "", radix: 16) else {
                    throw TestHTTPError.malformed("chunk size line \(line)")
                }
                if size == 0 {
                    while let trailer = try connection.takeLine(before: deadline), !trailer.isEmpty {}
                    break
                }
                var chunk: [UInt8] = []
                while chunk.count < size + 2 {
                    let piece = try connection.take(upTo: size + 2 - chunk.count, before: deadline)
                    guard !piece.isEmpty else { throw TestHTTPError.closedEarly }
                    chunk += piece
                }
                body += chunk.prefix(size)
            }
        } else {
            while true {
                let piece = try connection.take(upTo: 1 << 20, before: deadline)
                if piece.isEmpty { break }
                body += piece
            }
        }
        return TestHTTPResponse(status: head.status, headers: head.headers, body: body)
    }

    /// The path (and query) of a URL, whatever host it names: tests only ever connect
    /// to 127.0.0.1, never to the host a server advertises.
    public static func path(of url: String) -> String {
        guard let components = URLComponents(string: url) else { return url }
        return components.percentEncodedPath + (components.percentEncodedQuery.map { "?\($0)" } ?? "")
    }
}
