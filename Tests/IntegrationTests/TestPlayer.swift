import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A player for tests: a blocking TCP socket on 127.0.0.1 that sends one
/// request and reads the response as a real player would (or deliberately not).
final class TestPlayer: @unchecked Sendable {
    struct Head {
        var status: Int
        var headers: [String: String]
    }

    let fd: Int32
    private(set) var head: Head?
    /// Body bytes that arrived with the head.
    private var leftover: [UInt8] = []
    private(set) var peerClosed = false

    /// - Parameter receiveBuffer: a small SO_RCVBUF makes a non-reading player fill up fast.
    /// - Parameter source: a local address to connect from (e.g. `127.0.0.3`), as a distinct player host.
    init(port: UInt16, request: String, receiveBuffer: Int32? = nil, source: String? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestError("socket failed") }
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else { throw TestError("bind to \(source) failed: errno \(errno)") }
        }
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        // No close here: deinit runs even when a class's init throws once every property is set, and a
        // second close would shut a descriptor another test has since been given (seen as EBADF there).
        guard connected == 0 else { throw TestError("connect to 127.0.0.1:\(port) failed: errno \(errno)") }
        if !request.isEmpty { try send(request) }
    }

    convenience init(port: UInt16, path: String, method: String = "GET", receiveBuffer: Int32? = nil, source: String? = nil) throws {
        try self.init(port: port, request: "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: TestPlayer/1.0\r\n\r\n",
                      receiveBuffer: receiveBuffer, source: source)
    }

    deinit { Glibc.close(fd) }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestError("send failed: errno \(errno)") }
            sent += n
        }
    }

    private func setTimeout(_ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// One recv with a timeout; nil on timeout, empty on close.
    private func receive(max: Int, timeout: Double) -> [UInt8]? {
        setTimeout(Swift.max(timeout, 0.001))
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
        if n > 0 { return Array(buffer[0..<n]) }
        if n == 0 { peerClosed = true; return [] }
        if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return nil }
        peerClosed = true
        return []
    }

    /// Reads the response head (status and headers).
    @discardableResult
    func readHead(timeout: Double = 10) throws -> Head {
        if let head { return head }
        let deadline = Date().addingTimeInterval(timeout)
        var data: [UInt8] = []
        while true {
            if let end = Self.headEnd(data) {
                let text = String(decoding: data[0..<end], as: UTF8.self)
                var lines = text.components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst().split(separator: " ")
                guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw TestError("bad status line: \(text)") }
                var headers: [String: String] = [:]
                for line in lines where line.contains(":") {
                    let parts = line.split(separator: ":", maxSplits: 1)
                    headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces)
                }
                leftover = Array(data[(end + 4)...])
                let parsed = Head(status: status, headers: headers)
                head = parsed
                return parsed
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw TestError("no response head within \(timeout) s") }
            guard let chunk = receive(max: 65_536, timeout: remaining) else { continue }
            guard !chunk.isEmpty else { throw TestError("connection closed before a response head (\(data.count) bytes)") }
            data += chunk
        }
    }

    private static func headEnd(_ data: [UInt8]) -> Int? {
        guard data.count >= 4 else { return nil }
        for i in 0...(data.count - 4) where data[i] == 13 && data[i + 1] == 10 && data[i + 2] == 13 && data[i + 3] == 10 { return i }
        return nil
    }

    /// Reads body bytes until `count` arrived, the peer closed, or `timeout` passed.
    func readBody(count: Int, timeout: Double = 10) -> [UInt8] {
        var out = leftover
        leftover = []
        let deadline = Date().addingTimeInterval(timeout)
        while out.count < count, !peerClosed {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { break }
            if let chunk = receive(max: min(256 * 1024, count - out.count), timeout: remaining) { out += chunk }
        }
        if out.count > count {
            leftover = Array(out[count...])
            out.removeLast(out.count - count)
        }
        return out
    }

    /// Reads everything for `seconds`, counting bytes rather than keeping them when `keep` is false.
    func drain(seconds: Double, keep: Bool = false) -> (bytes: Int, data: [UInt8]) {
        var total = leftover.count
        var kept = keep ? leftover : []
        leftover = []
        let deadline = Date().addingTimeInterval(seconds)
        while !peerClosed {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { break }
            if let chunk = receive(max: 256 * 1024, timeout: remaining) {
                total += chunk.count
                if keep { kept += chunk }
            }
        }
        return (total, kept)
    }

    /// Reads at most `bytesPerSecond` for `seconds`, like a player on a slow link.
    func readThrottled(bytesPerSecond: Int, seconds: Double) -> Int {
        var total = leftover.count
        leftover = []
        let start = Date()
        while !peerClosed, Date().timeIntervalSince(start) < seconds {
            let allowed = Int(Date().timeIntervalSince(start) * Double(bytesPerSecond)) - total
            if allowed <= 0 { usleep(20_000); continue }
            if let chunk = receive(max: min(allowed, 16 * 1024), timeout: 0.2) { total += chunk.count }
        }
        return total
    }

    /// True once the relay closed the connection (waits up to `timeout`).
    func waitForClose(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !peerClosed, deadline.timeIntervalSinceNow > 0 {
            _ = receive(max: 256 * 1024, timeout: deadline.timeIntervalSinceNow)
        }
        return peerClosed
    }

    /// The body after the head of a short response.
    func readShortBody(timeout: Double = 5) -> String {
        String(decoding: readBody(count: 1 << 20, timeout: timeout), as: UTF8.self)
    }
}

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
