import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A tiny HTTP server on 127.0.0.1 (port 0) giving every request the same
/// answer, for the playlist fetches (`POST /channels/import` by URL,
/// `/modify_m3u`). One thread accepts; each connection is answered and closed
/// on it. `stop()` closes the listener.
final class PlaylistServer: Sendable {
    let port: Int
    private let listener: Int32
    private let answer: [UInt8]
    private let stopped = Atomic<Bool>(false)
    /// Requests read.
    let requests = Atomic<Int>(0)

    struct ServerError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Answers `status` with `headers` and `body` (with its Content-Length).
    init(status: Int = 200, headers: [String] = [], body: [UInt8]) throws {
        var head = "HTTP/1.1 \(status) Answer\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        for field in headers { head += field + "\r\n" }
        answer = Array((head + "\r\n").utf8) + body
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ServerError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else { close(fd); throw ServerError("bind/listen: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        listener = fd
        Thread { [self] in acceptLoop() }.start()
    }

    convenience init(status: Int = 200, headers: [String] = [], text: String) throws {
        try self.init(status: status, headers: headers, body: Array(text.utf8))
    }

    var url: String { "http://127.0.0.1:\(port)/playlist.m3u" }

    /// Stops accepting; the accept thread closes the listener when `accept` returns.
    func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 && errno == EINTR { continue }
            if fd < 0 || stopped.load(ordering: .relaxed) {
                if fd >= 0 { close(fd) }
                close(listener)
                return
            }
            serve(fd)
            close(fd)
        }
    }

    private func serve(_ fd: Int32) {
        // Read the request head; the answer does not depend on it.
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while !head.suffix(4).elementsEqual([13, 10, 13, 10]) {
            guard recv(fd, &byte, 1, 0) == 1 else { return }
            head.append(byte)
        }
        requests.add(1, ordering: .relaxed)
        var sent = 0
        while sent < answer.count {
            let n = answer[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            sent += n
        }
    }
}
