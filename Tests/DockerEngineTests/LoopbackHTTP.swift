@_exported import TestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Blocking HTTP/1.0 requests over a plain socket (TestSupport's raw-socket client), for
/// checking that a server inside a container answers on 127.0.0.1 (no client library involved).
enum LoopbackHTTP {
    /// The status code and body of `GET path` on 127.0.0.1:`port`, or nil when nothing answers.
    static func get(port: Int, path: String, timeoutSeconds: Int = 2) -> (status: Int, body: String)? {
        request("GET", port: port, path: path, timeoutSeconds: timeoutSeconds)
    }

    /// Any method with an optional JSON body; the status and body, or nil when nothing answers.
    static func request(_ method: String, port: Int, path: String, body: String? = nil, timeoutSeconds: Int = 15) -> (status: Int, body: String)? {
        guard let response = try? TestHTTP.request(method, port: UInt16(port), path: path, body: body.map { Array($0.utf8) },
                                                   version: "1.0", timeout: Double(timeoutSeconds)) else { return nil }
        return (response.status, response.text)
    }

    /// A TCP socket connected to 127.0.0.1:`port` with send and receive time limits; nil when refused.
    static func connected(port: Int, timeoutSeconds: Int) -> Int32? {
        guard let fd = try? Loopback.connect(port: UInt16(port)) else { return nil }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Plays `path` like a player: the status, and how many body bytes arrived
    /// (at most `bytes`) before `timeout` seconds or a close.
    static func stream(port: Int, path: String, bytes wanted: Int, timeout: Double) -> (status: Int, bytes: Int) {
        guard let player = try? TestPlayer(port: UInt16(port), request: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") else { return (0, 0) }
        let deadline = Date().addingTimeInterval(timeout)
        guard let head = try? player.readHead(timeout: timeout) else { return (0, 0) }
        return (head.status, player.readBody(count: wanted, timeout: deadline.timeIntervalSinceNow).count)
    }
}

/// A unix socket that accepts connections into its backlog but never answers:
/// a hung daemon.
final class SilentSocket {
    let path: String
    private let fd: Int32

    init() throws {
        path = "/tmp/acerelay-silent-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
        guard fd >= 0, bound, listen(fd, 16) == 0 else {
            throw PodmanServiceError("cannot listen on \(path): \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        close(fd)
        unlink(path)
    }
}
