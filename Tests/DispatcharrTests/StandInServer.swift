import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 server on 127.0.0.1 (port 0) for the faults the real Dispatcharr
/// cannot be asked for: it answers each request with what `handler` says, or never.
/// One thread accepts, one thread serves each connection (one request, then close).
final class StandInServer: Sendable {
    struct Request: Sendable {
        var method: String
        /// Path and query as sent.
        var target: String
        var headers: [(name: String, value: String)]
        var body: [UInt8]
        var at: ContinuousClock.Instant

        var path: String { String(target.prefix { $0 != "?" }) }
        var query: String { target.contains("?") ? String(target.drop { $0 != "?" }.dropFirst()) : "" }
        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
        var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        }
    }

    enum Answer: Sendable {
        case respond(status: Int, headers: [String] = [], body: String)
        /// Reads the request and never answers.
        case hang
    }

    let port: Int
    private let listener: Int32
    private let handler: @Sendable (Request) -> Answer
    private let state = Mutex(State())

    private struct State {
        var connections: Set<Int32> = []
        var requests: [Request] = []
        var stopped = false
    }

    init(handler: @escaping @Sendable (Request) -> Answer) throws {
        self.handler = handler
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw StandInError("socket: errno \(errno)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 128) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else { close(fd); throw StandInError("bind/listen: errno \(errno)") }
        port = Int(UInt16(bigEndian: address.sin_port))
        listener = fd
        Thread { [self] in acceptLoop() }.start()
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// Every request read so far, in arrival order.
    var requests: [Request] { state.withLock { $0.requests } }

    func requests(_ method: String, _ path: String) -> [Request] {
        requests.filter { $0.method == method && $0.path == path }
    }

    func stop() {
        let open = state.withLock { state -> Set<Int32> in
            state.stopped = true
            return state.connections
        }
        shutdown(listener, Int32(SHUT_RDWR))
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    /// A port on 127.0.0.1 that nothing listens on.
    static func closedPort() throws -> Int {
        let server = try StandInServer { _ in .hang }
        let port = server.port
        server.stop()
        // The listener closes on its accept thread; wait for connects to be refused.
        for _ in 0..<100 where canConnect(port) { usleep(10_000) }
        return port
    }

    private static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                close(listener)
                return
            }
            let accepted = state.withLock { state in
                if state.stopped { return false }
                state.connections.insert(fd)
                return true
            }
            guard accepted else { close(fd); close(listener); return }
            Thread { [self] in
                serve(fd)
                state.withLock { _ = $0.connections.remove(fd) }
                close(fd)
            }.start()
        }
    }

    private func serve(_ fd: Int32) {
        guard let request = readRequest(fd) else { return }
        state.withLock { $0.requests.append(request) }
        switch handler(request) {
        case .respond(let status, let headers, let body):
            let bytes = Array(body.utf8)
            var head = "HTTP/1.1 \(status) Answer\r\nContent-Length: \(bytes.count)\r\nConnection: close\r\n"
            if !headers.contains(where: { $0.lowercased().hasPrefix("content-type:") }) {
                head += "Content-Type: application/json\r\n"
            }
            for field in headers { head += field + "\r\n" }
            sendAll(fd, Array((head + "\r\n").utf8) + bytes)
        case .hang:
            var byte: UInt8 = 0
            while recv(fd, &byte, 1, 0) > 0 {}
        }
    }

    private func readRequest(_ fd: Int32) -> Request? {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        var headEnd: Int?
        var wanted = Int.max
        while received.count < wanted {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
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
        guard parts.count >= 2 else { return nil }
        let headers = lines.dropFirst().compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return Request(method: String(parts[0]), target: String(parts[1]), headers: headers,
                       body: Array(received[(end + 4)...]), at: .now)
    }

    private static func find(_ needle: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        return (0...(bytes.count - needle.count)).first { Array(bytes[$0..<($0 + needle.count)]) == needle }
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }
}

struct StandInError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
