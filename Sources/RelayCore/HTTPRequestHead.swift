import Foundation

/// A parsed HTTP/1.x request line and headers.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: String
    /// The request target as sent, e.g. `/ace/getstream?id=...`.
    public var target: String
    public var version: String
    /// Header names lower-cased, in order.
    public var headers: [(name: String, value: String)]

    public static func == (a: Self, b: Self) -> Bool {
        a.method == b.method && a.target == b.target && a.version == b.version
            && a.headers.map(\.name) == b.headers.map(\.name) && a.headers.map(\.value) == b.headers.map(\.value)
    }

    /// The target's path, percent-decoded.
    public var path: String {
        let raw = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return HTTPRequestHead.percentDecode(raw)
    }

    /// Query parameters in order, percent-decoded (`+` as space).
    public var queryItems: [(name: String, value: String)] {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return [] }
        return parts[1].split(separator: "&").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = HTTPRequestHead.percentDecode(String(kv[0]).replacingOccurrences(of: "+", with: " "))
            let value = kv.count > 1 ? HTTPRequestHead.percentDecode(String(kv[1]).replacingOccurrences(of: "+", with: " ")) : ""
            return (name, value)
        }
    }

    public func query(_ name: String) -> String? {
        queryItems.first { $0.name == name }?.value
    }

    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name == lowered }?.value
    }

    static func percentDecode(_ s: String) -> String {
        guard s.contains("%") else { return s }
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "%"), bytes.count >= 2,
               let hi = hexValue(bytes[bytes.startIndex]), let lo = hexValue(bytes[bytes.startIndex + 1]) {
                out.append(hi << 4 | lo)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
}

/// Why a request head was refused; each maps to one HTTP status.
public enum HTTPRequestError: Error, Equatable, Sendable {
    /// The head exceeded the size limit before its blank line (431).
    case headTooLarge
    /// Not an HTTP/1.x request line or header (400).
    case malformed(String)
}

/// Incremental parser for one request head, bounded in size.
///
/// Bytes arrive in any split; `parse()` answers nil until the blank line that
/// ends the head is in. Nothing after the head is read: clients of a stream
/// send no body.
public struct HTTPRequestParser: Sendable {
    /// The most bytes a head may take, including the final blank line.
    public let limit: Int
    private(set) var buffer: [UInt8] = []

    public init(limit: Int = 8 * 1024) {
        self.limit = limit
        buffer.reserveCapacity(min(limit, 1024))
    }

    public var bytesBuffered: Int { buffer.count }

    /// Adds bytes; returns the head once complete, nil while more is needed.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) throws(HTTPRequestError) -> HTTPRequestHead? {
        let searchStart = max(0, buffer.count - 3)
        buffer.append(contentsOf: bytes)
        guard let end = HTTPRequestParser.headEnd(in: buffer, from: searchStart) else {
            if buffer.count > limit { throw .headTooLarge }
            return nil
        }
        if end > limit { throw .headTooLarge }
        return try HTTPRequestParser.parseHead(buffer[..<end])
    }

    /// Index just past the first CRLFCRLF (or bare LFLF, which some clients send).
    private static func headEnd(in buffer: [UInt8], from start: Int) -> Int? {
        var i = start
        while i < buffer.count {
            if buffer[i] == 0x0A {
                if i + 1 < buffer.count, buffer[i + 1] == 0x0A { return i + 2 }
                if i + 2 < buffer.count, buffer[i + 1] == 0x0D, buffer[i + 2] == 0x0A { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    static func parseHead(_ bytes: ArraySlice<UInt8>) throws(HTTPRequestError) -> HTTPRequestHead {
        guard !bytes.contains(0) else { throw .malformed("NUL byte in request head") }
        let text = String(decoding: bytes, as: UTF8.self)
        var lines = text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        lines.removeAll { $0.isEmpty }
        guard let requestLine = lines.first else { throw .malformed("empty request") }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3 else { throw .malformed("request line must be METHOD TARGET HTTP/1.x") }
        let method = String(parts[0]), target = String(parts[1]), version = String(parts[2])
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else { throw .malformed("unsupported HTTP version \(version)") }
        guard method.utf8.allSatisfy({ (0x41...0x5A).contains($0) }), !method.isEmpty else {
            throw .malformed("invalid method")
        }
        guard target.hasPrefix("/") || target.hasPrefix("http://") || target.hasPrefix("https://") else {
            throw .malformed("request target must be a path")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw .malformed("header line without a colon") }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            guard !name.isEmpty, !name.contains(" ") else { throw .malformed("invalid header name") }
            headers.append((name, line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        // Absolute-form targets (proxies) are reduced to their path so routing sees one form.
        var path = target
        if !target.hasPrefix("/"), let schemeEnd = target.range(of: "://") {
            let rest = target[schemeEnd.upperBound...]
            path = rest.firstIndex(of: "/").map { String(rest[$0...]) } ?? "/"
        }
        return HTTPRequestHead(method: method, target: path, version: version, headers: headers)
    }
}
