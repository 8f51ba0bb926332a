import Foundation
import Glibc

/// Why a test's HTTP exchange failed.
enum TestHTTPError: Error, Equatable {
    /// connect(2) failed with this errno (ECONNREFUSED for a dead engine).
    case connectFailed(errno: Int32)
    /// Nothing (or not enough) arrived before the deadline.
    case timedOut
    /// The peer closed before a whole response head arrived.
    case closedEarly
    /// The response was not HTTP.
    case malformed(String)
}

/// One blocking TCP connection to 127.0.0.1, with a small HTTP/1.1 reader on top.
/// Deliberately independent of the simulator's own HTTP code.
final class TestHTTPConnection {
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private var isOpen = true

    /// Connects to 127.0.0.1:`port`.
    init(port: UInt16) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw TestHTTPError.connectFailed(errno: code)
        }
        // Short receive timeouts so reads can honour the caller's deadline.
        var timeout = timeval(tv_sec: 0, tv_usec: 20_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// Sends raw bytes.
    func send(raw text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Sends a GET (or another method) for `path`.
    func sendRequest(_ path: String, method: String = "GET", keepAlive: Bool = false) {
        send(raw: "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: VLC/3.0.21 LibVLC/3.0.21\r\n"
            + "Accept-Encoding: identity\r\nConnection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n")
    }

    /// Reads more bytes; false at end of stream; throws after the deadline.
    @discardableResult
    func fill(before deadline: Date) throws -> Bool {
        guard isOpen else { return false }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                buffer.append(contentsOf: chunk[..<n])
                return true
            }
            if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                isOpen = false
                return false
            }
            if Date() >= deadline { throw TestHTTPError.timedOut }
        }
    }

    /// Reads a response head: status and lowercased header fields.
    func readHead(before deadline: Date) throws -> (status: Int, headers: [String: String]) {
        while true {
            if let end = find([13, 10, 13, 10]) {
                let text = String(decoding: buffer[..<end], as: UTF8.self)
                buffer.removeFirst(end + 4)
                var lines = text.components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst().split(separator: " ")
                guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
                    throw TestHTTPError.malformed(text)
                }
                var headers: [String: String] = [:]
                for line in lines {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...]
                        .trimmingCharacters(in: .whitespaces)
                }
                return (status, headers)
            }
            guard try fill(before: deadline) else { throw TestHTTPError.closedEarly }
        }
    }

    /// Takes up to `count` buffered bytes, reading if none are buffered. Empty at end of stream.
    func take(upTo count: Int, before deadline: Date) throws -> [UInt8] {
        if buffer.isEmpty, !(try fill(before: deadline)) { return [] }
        let taken = Array(buffer.prefix(count))
        buffer.removeFirst(taken.count)
        return taken
    }

    /// Takes one CRLF-terminated line (without the CRLF).
    func takeLine(before deadline: Date) throws -> String? {
        while true {
            if let end = find([13, 10]) {
                let line = String(decoding: buffer[..<end], as: UTF8.self)
                buffer.removeFirst(end + 2)
                return line
            }
            guard try fill(before: deadline) else { return nil }
        }
    }

    private func find(_ pattern: [UInt8]) -> Int? {
        guard buffer.count >= pattern.count else { return nil }
        for i in 0...(buffer.count - pattern.count) where buffer[i] == pattern[0] {
            if Array(buffer[i..<(i + pattern.count)]) == pattern { return i }
        }
        return nil
    }
}

/// A complete HTTP response.
struct TestHTTPResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object; fails the caller's expectations with an empty dictionary otherwise.
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
    }
}

/// Plain GETs for API calls.
enum TestHTTP {
    /// GETs `path` on 127.0.0.1:`port` with `Connection: close`.
    static func get(port: UInt16, _ path: String, timeout: Double = 5) throws -> TestHTTPResponse {
        let connection = try TestHTTPConnection(port: port)
        connection.sendRequest(path)
        return try readResponse(on: connection, timeout: timeout)
    }

    /// Reads one response with a Content-Length (or until close) body.
    static func readResponse(on connection: TestHTTPConnection, timeout: Double = 5) throws -> TestHTTPResponse {
        let deadline = Date().addingTimeInterval(timeout)
        let head = try connection.readHead(before: deadline)
        var body: [UInt8] = []
        if let length = head.headers["content-length"].flatMap(Int.init) {
            while body.count < length {
                let piece = try connection.take(upTo: length - body.count, before: deadline)
                guard !piece.isEmpty else { throw TestHTTPError.closedEarly }
                body += piece
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

    /// The path (and query) of an engine URL, whatever host it names: tests only ever
    /// connect to 127.0.0.1, never to the host the engine advertises.
    static func path(of url: String) -> String {
        guard let components = URLComponents(string: url) else { return url }
        return components.percentEncodedPath + (components.percentEncodedQuery.map { "?\($0)" } ?? "")
    }
}

/// A streaming (chunked) playback response, read incrementally.
final class TestPlaybackStream {
    /// How a response ended.
    enum Ending: Equatable {
        /// The zero-length chunk arrived: a clean end.
        case terminator
        /// The connection closed without one.
        case closed
    }

    private(set) var status: Int
    private(set) var headers: [String: String]
    /// Body bytes received so far (de-chunked), across every request made on the connection.
    private(set) var body: [UInt8] = []
    /// Set once the response has ended.
    private(set) var ending: Ending?

    private let connection: TestHTTPConnection
    private var chunked: Bool
    private var chunkRemaining = 0
    private let path: String

    /// Opens `path` and reads the response head.
    init(port: UInt16, path: String, timeout: Double = 5) throws {
        connection = try TestHTTPConnection(port: port)
        self.path = path
        connection.sendRequest(path, keepAlive: true)
        let head = try connection.readHead(before: Date().addingTimeInterval(timeout))
        status = head.status
        headers = head.headers
        chunked = head.headers["transfer-encoding"]?.lowercased() == "chunked"
    }

    /// After a clean end, asks for the same path again on the same (kept-alive) connection,
    /// as libcurl does; the new body is appended to `body`.
    func requestAgain(timeout: Double = 5) throws {
        precondition(ending == .terminator, "only a cleanly ended response leaves the connection usable")
        connection.sendRequest(path, keepAlive: true)
        let head = try connection.readHead(before: Date().addingTimeInterval(timeout))
        status = head.status
        headers = head.headers
        chunked = head.headers["transfer-encoding"]?.lowercased() == "chunked"
        chunkRemaining = 0
        ending = nil
    }

    /// Reads for `seconds` (or until the response ends).
    func read(for seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        while ending == nil, Date() < deadline {
            do {
                try step(before: deadline)
            } catch {
                return
            }
        }
    }

    /// Reads until `count` body bytes are in or `seconds` pass; says whether they are.
    @discardableResult
    func read(atLeast count: Int, within seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while body.count < count, ending == nil, Date() < deadline {
            do {
                try step(before: deadline)
            } catch {
                break
            }
        }
        return body.count >= count
    }

    /// Reads until the response ends or `seconds` pass.
    func readUntilEnd(within seconds: Double) -> Ending? {
        read(for: seconds)
        return ending
    }

    private func step(before deadline: Date) throws {
        guard chunked else {
            let piece = try connection.take(upTo: 1 << 20, before: deadline)
            if piece.isEmpty { ending = .closed } else { body += piece }
            return
        }
        if chunkRemaining == 0 {
            guard let line = try connection.takeLine(before: deadline) else {
                ending = .closed
                return
            }
            guard let size = Int(line.split(separator: ";")[0], radix: 16) else {
                throw TestHTTPError.malformed("chunk size line \(line)")
            }
            if size == 0 {
                // Trailer section, then the blank line that ends the message.
                while let trailer = try connection.takeLine(before: deadline), !trailer.isEmpty {}
                ending = .terminator
                return
            }
            chunkRemaining = size + 2
        }
        let piece = try connection.take(upTo: chunkRemaining, before: deadline)
        guard !piece.isEmpty else {
            ending = .closed
            return
        }
        // The last two bytes of each chunk's allotment are its CRLF.
        let dataPart = max(0, min(piece.count, chunkRemaining - 2))
        body += piece[..<dataPart]
        chunkRemaining -= piece.count
    }
}
