import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A tiny HTTP server on 127.0.0.1 (port 0) for the client's tests: one thread
/// accepts, one thread per connection reads the request head and then behaves
/// as told. It stops, and closes every connection, in `stop()`.
final class LoopbackServer: Sendable {
    /// What the server does once it has read a request.
    enum Behaviour: Sendable {
        /// A complete answer with a Content-Length.
        case answer(status: Int, headers: [String] = [], body: [UInt8] = [])
        /// A 200 whose body never ends (close-delimited, or with an announced length).
        case endlessBody(announcedLength: Int?)
        /// Accepts and never answers.
        case silent
        /// The head at once, then one body byte a second.
        case trickle
        /// Answers 200 with the request as it arrived (head and body) as the body.
        case echo
    }

    let port: Int
    private let listener: Int32
    private let behaviour: Behaviour
    private let state = Mutex(State())
    /// Body bytes the server managed to hand to the kernel, over all connections.
    let bodyBytesSent = Atomic<Int>(0)
    /// Requests read, over all connections.
    let requests = Atomic<Int>(0)

    /// Every close and shutdown happens under this lock, so none can hit a
    /// descriptor number the process has already reused for another socket.
    private struct State {
        var connections: Set<Int32> = []
        var stopped = false
        var listenerClosed = false
    }

    init(_ behaviour: Behaviour) throws {
        self.behaviour = behaviour
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ServerError("socket: errno \(errno)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 512) == 0 else { close(fd); throw ServerError("bind/listen: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        listener = fd
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// Closes the listener and every connection; connection threads end on their next call.
    func stop() {
        state.withLock { state in
            guard !state.stopped else { return }
            state.stopped = true
            if !state.listenerClosed { shutdown(listener, Int32(SHUT_RDWR)) }
            for fd in state.connections { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// A port on 127.0.0.1 that nothing listens on (bound, then released).
    static func closedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ServerError("socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw ServerError("bind: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
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
            let thread = Thread { [self] in
                serve(fd)
                state.withLock { state in
                    state.connections.remove(fd)
                    close(fd)
                }
            }
            thread.start()
        }
    }

    private func serve(_ fd: Int32) {
        guard let request = readRequest(fd) else { return }
        requests.add(1, ordering: .relaxed)
        switch behaviour {
        case .answer(let status, let headers, let body):
            var head = "HTTP/1.1 \(status) Status\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
            for field in headers { head += field + "\r\n" }
            _ = sendAll(fd, Array((head + "\r\n").utf8))
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
            let head = "HTTP/1.1 200 OK\r\nContent-Length: \(request.count)\r\nConnection: close\r\n\r\n"
            _ = sendAll(fd, Array(head.utf8))
            _ = sendAll(fd, request, counted: true)
        }
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    /// The request head and, when it announces one, its body; nil when the peer left first.
    private func readRequest(_ fd: Int32) -> [UInt8]? {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var wanted: Int?
        while wanted.map({ received.count < $0 }) ?? true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            received += buffer[0..<n]
            if wanted == nil, let end = headEnd(received) {
                let head = String(decoding: received[0..<end], as: UTF8.self).lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                wanted = end + 4 + length
            }
        }
        return received
    }

    private func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        return (0...(bytes.count - 4)).first { bytes[$0] == 13 && bytes[$0 + 1] == 10 && bytes[$0 + 2] == 13 && bytes[$0 + 3] == 10 }
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

struct ServerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
