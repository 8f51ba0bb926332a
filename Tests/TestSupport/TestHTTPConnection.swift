import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a test's HTTP exchange failed.
public enum TestHTTPError: Error, Equatable {
    /// connect(2) (or the bind to a source address) failed with this errno (ECONNREFUSED for a dead server).
    case connectFailed(errno: Int32)
    /// Nothing (or not enough) arrived before the deadline.
    case timedOut
    /// The peer closed before a whole response head arrived.
    case closedEarly
    /// The response was not HTTP.
    case malformed(String)
}

/// A response head: the status and the header fields, names lower-cased.
public struct TestHTTPHead: Sendable {
    public var status: Int
    public var headers: [String: String]

    public init(status: Int, headers: [String: String]) {
        self.status = status
        self.headers = headers
    }
}

/// One blocking TCP connection to 127.0.0.1 with a small HTTP/1.1 reader on top, so a
/// test sees exactly the bytes a server sends: status line, header fields, body, in the
/// pieces they arrive in. Independent of the project's own HTTP code on purpose.
///
/// Reads wait with `poll(2)` up to a deadline; a read never takes more bytes from the
/// socket than it was asked for, so a slow reader is slow for the sender too (the
/// kernel's buffers fill, as with a real player).
public final class TestHTTPConnection: @unchecked Sendable {
    // @unchecked: one test thread uses a connection at a time; only `shutdown()` may
    // come from another thread, to end a read blocked on this one.

    /// The socket, for tests that write bytes no HTTP client would.
    public let fd: Int32
    /// Bytes received and not yet taken.
    private var buffer: [UInt8] = []
    /// Where recv writes: grown to the largest read asked for (at most 256 KiB) and
    /// reused, so reading a stream allocates no more than it keeps.
    private var scratch: [UInt8] = []
    /// True once the peer closed (or reset) the connection.
    public private(set) var peerClosed = false

    /// Connects to 127.0.0.1:`port`.
    /// - Parameters:
    ///   - source: a local address to connect from (e.g. `127.0.0.3`), as a distinct host.
    ///   - receiveBuffer: SO_RCVBUF; a small one makes a connection that does not read fill up fast.
    public init(port: UInt16, source: String? = nil, receiveBuffer: Int32? = nil) throws {
        fd = try Loopback.connect(port: port, source: source, receiveBuffer: receiveBuffer)
    }

    deinit { close(fd) }

    // MARK: Sending

    /// Sends raw bytes; a failure shows up as a missing answer.
    public func send(raw text: String) {
        try? send(bytes: Array(text.utf8))
    }

    /// Sends all of `text`, or throws.
    public func send(_ text: String) throws {
        try send(bytes: Array(text.utf8))
    }

    /// Sends all of `bytes`, or throws.
    public func send(bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw TestFailure("send failed: errno \(errno)") }
            sent += n
        }
    }

    /// Sends a GET (or another method) for `path`, as VLC does.
    public func sendRequest(_ path: String, method: String = "GET", keepAlive: Bool = false) {
        send(raw: "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: VLC/3.0.21 LibVLC/3.0.21\r\n"
            + "Accept-Encoding: identity\r\nConnection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n")
    }

    /// Shuts both directions down: a read blocked on another thread returns at once.
    public func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    // MARK: Receiving

    /// Up to `max` bytes, buffered ones first, waiting up to `timeout` seconds for the
    /// socket: nil when nothing came in time, empty once the peer closed.
    public func receive(max: Int = 65_536, timeout: Double) -> [UInt8]? {
        if buffer.isEmpty {
            guard let chunk = receiveFromSocket(max: max, timeout: timeout) else { return nil }
            return chunk
        }
        let taken = Array(buffer.prefix(max))
        buffer.removeFirst(taken.count)
        return taken
    }

    /// Reads more bytes (at most `max`) into the buffer; false at end of stream; throws after the deadline.
    @discardableResult
    public func fill(max: Int = 65_536, before deadline: Date) throws -> Bool {
        while true {
            if peerClosed { return false }
            if let chunk = receiveFromSocket(max: max, timeout: deadline.timeIntervalSinceNow) {
                if chunk.isEmpty { return false }
                buffer += chunk
                return true
            }
            if Date() >= deadline { throw TestHTTPError.timedOut }
        }
    }

    /// Reads a response head.
    public func readHead(before deadline: Date) throws -> TestHTTPHead {
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
                return TestHTTPHead(status: status, headers: headers)
            }
            guard try fill(before: deadline) else { throw TestHTTPError.closedEarly }
        }
    }

    /// Bytes received but not yet taken (what arrived with the head, for one).
    public var bufferedCount: Int { buffer.count }

    /// Takes up to `count` buffered bytes, reading (at most `count`) if none are buffered. Empty at end of stream.
    public func take(upTo count: Int, before deadline: Date) throws -> [UInt8] {
        if buffer.isEmpty, !(try fill(max: count, before: deadline)) { return [] }
        let taken = Array(buffer.prefix(count))
        buffer.removeFirst(taken.count)
        return taken
    }

    /// Takes one CRLF-terminated line (without the CRLF); nil at end of stream.
    public func takeLine(before deadline: Date) throws -> String? {
        while true {
            if let end = find([13, 10]) {
                let line = String(decoding: buffer[..<end], as: UTF8.self)
                buffer.removeFirst(end + 2)
                return line
            }
            guard try fill(before: deadline) else { return nil }
        }
    }

    /// One recv of at most `max` bytes once the socket is readable within `timeout`:
    /// nil on timeout, empty at end of stream (or on an error, which ends it too).
    private func receiveFromSocket(max: Int, timeout: Double) -> [UInt8]? {
        guard !peerClosed else { return [] }
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(Swift.max(0, Swift.min(timeout, 3600)) * 1000)
        let ready = poll(&descriptor, 1, milliseconds)
        if ready < 0 && errno == EINTR { return nil }
        if ready == 0 { return nil }
        let wanted = Swift.max(1, Swift.min(max, 256 << 10))
        if scratch.count < wanted { scratch = [UInt8](repeating: 0, count: wanted) }
        let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, wanted, Int32(MSG_DONTWAIT)) }
        if n > 0 { return Array(scratch[..<n]) }
        if n < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return nil }
        peerClosed = true
        return []
    }

    private func find(_ pattern: [UInt8]) -> Int? {
        guard buffer.count >= pattern.count else { return nil }
        for i in 0...(buffer.count - pattern.count) where buffer[i] == pattern[0] {
            if buffer[i..<(i + pattern.count)].elementsEqual(pattern) { return i }
        }
        return nil
    }
}
