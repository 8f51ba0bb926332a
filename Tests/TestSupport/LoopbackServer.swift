import Foundation
import Locking
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 server on 127.0.0.1 (port 0) giving canned answers: playlists,
/// a stand-in for another service's API, or the faults a real server cannot be asked
/// for (silence, a trickle, an endless body). One thread accepts, one thread serves
/// each connection: it reads the request (head and Content-Length body), answers as
/// `handler` says, and closes. `stop()` closes the listener and every connection.
public final class LoopbackServer: Sendable {
    /// A request as it arrived.
    public struct Request: Sendable {
        public var method: String
        /// Path and query as sent.
        public var target: String
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]
        /// Head and body, byte for byte.
        public var raw: [UInt8]
        public var at: ContinuousClock.Instant

        public var path: String { String(target.prefix { $0 != "?" }) }
        public var query: String { target.contains("?") ? String(target.drop { $0 != "?" }.dropFirst()) : "" }
        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
        public var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        }
    }

    /// What the server does once it has read a request.
    public enum Answer: Sendable {
        /// A complete answer with a Content-Length and `Connection: close`; `headers` are whole lines.
        case answer(status: Int, headers: [String] = [], body: [UInt8] = [])
        /// A 200 whose body never ends (close-delimited, or with an announced length it never reaches).
        case endlessBody(announcedLength: Int?)
        /// Reads the request and never answers.
        case silent
        /// The head at once (Content-Length 1000), then one body byte a second.
        case trickle
        /// Answers 200 with the request as it arrived (head and body) as the body.
        case echo
    }

    public let port: Int
    private let listener: Int32
    private let handler: @Sendable (Request) -> Answer
    private let state = Locked(State())
    /// Body bytes the server managed to hand to the kernel, over all connections.
    public let bodyBytesSent = Atomic<Int>(0)
    /// Requests read, over all connections.
    public let requests = Atomic<Int>(0)

    /// Every close and shutdown happens under this lock, so none can hit a
    /// descriptor number the process has already reused for another socket.
    private struct State {
        var connections: Set<Int32> = []
        var received: [Request] = []
        var stopped = false
        var listenerClosed = false
    }

    /// Answers every request as `handler` decides; it runs on the connection's thread.
    public init(handler: @escaping @Sendable (Request) -> Answer) throws {
        self.handler = handler
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 512) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else { close(fd); throw TestFailure("bind/listen on 127.0.0.1: errno \(errno)") }
        port = Int(UInt16(bigEndian: address.sin_port))
        listener = fd
        Thread { [self] in acceptLoop() }.start()
    }

    /// Gives every request the same answer.
    public convenience init(_ answer: Answer) throws {
        try self.init { _ in answer }
    }

    /// `http://127.0.0.1:<port>`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Every request read so far, in arrival order.
    public var received: [Request] { state.withLock { $0.received } }

    /// A port on 127.0.0.1 that nothing listens on.
    public static func closedPort() throws -> Int { Int(try Loopback.freePort()) }

    /// Closes the listener and every connection; connection threads end on their next call.
    public func stop() {
        state.withLock { state in
            guard !state.stopped else { return }
            state.stopped = true
            if !state.listenerClosed { shutdown(listener, Int32(SHUT_RDWR)) }
            for fd in state.connections { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 && errno == EINTR { continue }
            let accepted = state.withLock { state in
                if fd >= 0 && !state.stopped {
                    state.connections.insert(fd)
                    return true
                }
                if fd >= 0 { close(fd) }
                close(listener)
                state.listenerClosed = true
                return false
            }
            guard accepted else { return }
            Thread { [self] in
                serve(fd)
                state.withLock { state in
                    state.connections.remove(fd)
                    close(fd)
                }
            }.start()
        }
    }

    private func serve(_ fd: Int32) {
        guard let request = readRequest(fd) else { return }
        state.withLock { $0.received.append(request) }
        requests.add(1, ordering: .relaxed)
        switch handler(request) {
        case .answer(let status, let headers, let body):
            var head = "HTTP/1.1 \(status) Answer\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
            for field in headers { head += field + "\r\n" }
            guard sendAll(fd, Array((head + "\r\n").utf8)) else { return }
            _ = sendAll(fd, body, counted: true)
        case .endlessBody(let announced):
            var head = "HTTP/1.1 200 OK\r\nConnection: close\r\n"
            if let announced { head += "Content-Length: \(announced)\r\n" }
            guard sendAll(fd, Array((head + "\r\n").utf8)) else { return }
            let chunk = [UInt8](repeating: 0x41, count: 64 << 10)
            while !isStopped, sendAll(fd, chunk, counted: true) {}
        case .silent:
            var byte: UInt8 = 0
            // Blocks until the peer or `stop()` ends the connection.
            while recv(fd, &byte, 1, 0) > 0 {}
        case .trickle:
            guard sendAll(fd, Array("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".utf8)) else { return }
            while !isStopped, sendAll(fd, [0x42], counted: true) { sleep(1) }
        case .echo:
            let head = "HTTP/1.1 200 OK\r\nContent-Length: \(request.raw.count)\r\nConnection: close\r\n\r\n"
            guard sendAll(fd, Array(head.utf8)) else { return }
            _ = sendAll(fd, request.raw, counted: true)
        }
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    /// The request head and, when it announces one, its body; nil when the peer left first.
    private func readRequest(_ fd: Int32) -> Request? {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        var headEnd: Int?
        var wanted = Int.max
        while received.count < wanted {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            received += buffer[0..<n]
            if headEnd == nil, let end = Self.find([13, 10, 13, 10], in: received) {
                headEnd = end
                let head = String(decoding: received[0..<end], as: UTF8.self)
                let length = head.split(separator: "\r\n").dropFirst()
                    .first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                wanted = end + 4 + length
            }
        }
        guard let end = headEnd else { return nil }
        let lines = String(decoding: received[0..<end], as: UTF8.self).split(separator: "\r\n")
        let parts = lines.first?.split(separator: " ") ?? []
        let headers = lines.dropFirst().compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return Request(method: parts.first.map(String.init) ?? "", target: parts.count > 1 ? String(parts[1]) : "",
                       headers: headers, body: Array(received[(end + 4)...]), raw: received, at: .now)
    }

    private static func find(_ needle: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        return (0...(bytes.count - needle.count)).first { bytes[$0..<($0 + needle.count)].elementsEqual(needle) }
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8], counted: Bool = false) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
            if counted { bodyBytesSent.add(n, ordering: .relaxed) }
        }
        return true
    }
}
