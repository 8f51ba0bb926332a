import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A player for tests: a connection to 127.0.0.1 that sends one request and reads
/// the response as a real player would (or deliberately does not), on the caller's thread.
public final class TestPlayer: @unchecked Sendable {
    public typealias Head = TestHTTPHead

    private let connection: TestHTTPConnection
    /// The response head, once `readHead` has read it.
    public private(set) var head: Head?

    /// The socket, for tests that write bytes no player would.
    public var fd: Int32 { connection.fd }
    /// True once the server closed the connection.
    public var peerClosed: Bool { connection.peerClosed }

    /// Connects and sends `request` as given (nothing when empty).
    /// - Parameter receiveBuffer: a small SO_RCVBUF makes a non-reading player fill up fast.
    /// - Parameter source: a local address to connect from (e.g. `127.0.0.3`), as a distinct player host.
    public init(port: UInt16, request: String, receiveBuffer: Int32? = nil, source: String? = nil) throws {
        do {
            connection = try TestHTTPConnection(port: port, source: source, receiveBuffer: receiveBuffer)
        } catch TestHTTPError.connectFailed(let code) {
            throw TestFailure("connect to 127.0.0.1:\(port)\(source.map { " from \($0)" } ?? "") failed: errno \(code)")
        }
        if !request.isEmpty { try send(request) }
    }

    /// Connects and sends `method path` with the headers of a plain player.
    public convenience init(port: UInt16, path: String, method: String = "GET", receiveBuffer: Int32? = nil, source: String? = nil) throws {
        try self.init(port: port, request: "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: TestPlayer/1.0\r\n\r\n",
                      receiveBuffer: receiveBuffer, source: source)
    }

    public func send(_ text: String) throws { try connection.send(text) }

    /// Reads the response head (status and headers), once; later calls return it again.
    @discardableResult
    public func readHead(timeout: Double = 10) throws -> Head {
        if let head { return head }
        do {
            let parsed = try connection.readHead(before: Date().addingTimeInterval(timeout))
            head = parsed
            return parsed
        } catch TestHTTPError.timedOut {
            throw TestFailure("no response head within \(timeout) s")
        } catch TestHTTPError.closedEarly {
            throw TestFailure("connection closed before a response head (\(connection.bufferedCount) bytes)")
        } catch TestHTTPError.malformed(let text) {
            throw TestFailure("bad status line: \(text)")
        }
    }

    /// Reads body bytes until `count` arrived, the peer closed, or `timeout` passed.
    public func readBody(count: Int, timeout: Double = 10) -> [UInt8] {
        var out: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while out.count < count {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 || connection.bufferedCount > 0 else { break }
            guard let chunk = connection.receive(max: min(256 * 1024, count - out.count), timeout: remaining) else { continue }
            if chunk.isEmpty { break }
            out += chunk
        }
        return out
    }

    /// Reads everything for `seconds`, counting bytes rather than keeping them when `keep` is false.
    public func drain(seconds: Double, keep: Bool = false) -> (bytes: Int, data: [UInt8]) {
        var total = 0
        var kept: [UInt8] = []
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 || connection.bufferedCount > 0 else { break }
            guard let chunk = connection.receive(max: 256 * 1024, timeout: remaining) else { continue }
            if chunk.isEmpty { break }
            total += chunk.count
            if keep { kept += chunk }
        }
        return (total, kept)
    }

    /// Reads at most `bytesPerSecond` for `seconds`, like a player on a slow link.
    public func readThrottled(bytesPerSecond: Int, seconds: Double) -> Int {
        var total = 0
        let start = Date()
        while !peerClosed, Date().timeIntervalSince(start) < seconds {
            let allowed = Int(Date().timeIntervalSince(start) * Double(bytesPerSecond)) - total
            if allowed <= 0 { usleep(20_000); continue }
            if let chunk = connection.receive(max: min(allowed, 16 * 1024), timeout: 0.2) { total += chunk.count }
        }
        return total
    }

    /// True once the server closed the connection (waits up to `timeout`, discarding what arrives).
    public func waitForClose(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !peerClosed, deadline.timeIntervalSinceNow > 0 {
            _ = connection.receive(max: 256 * 1024, timeout: deadline.timeIntervalSinceNow)
        }
        return peerClosed
    }

    /// The body after the head of a short response.
    public func readShortBody(timeout: Double = 5) -> String {
        String(decoding: readBody(count: 1 << 20, timeout: timeout), as: UTF8.self)
    }
}
