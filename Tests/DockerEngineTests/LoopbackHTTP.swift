import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Minimal blocking HTTP/1.0 requests over a plain socket, for checking that a
/// server inside a container answers on 127.0.0.1 (no client library involved).
enum LoopbackHTTP {
    /// The status code and body of `GET path` on 127.0.0.1:`port`, or nil when nothing answers.
    static func get(port: Int, path: String, timeoutSeconds: Int = 2) -> (status: Int, body: String)? {
        request("GET", port: port, path: path, timeoutSeconds: timeoutSeconds)
    }
}

extension LoopbackHTTP {
    /// A TCP socket connected to 127.0.0.1:`port` with send and receive time limits; nil when refused.
    static func connected(port: Int, timeoutSeconds: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard ok else { close(fd); return nil }
        return fd
    }

    /// Any method with an optional JSON body; the status and body, or nil when nothing answers.
    static func request(_ method: String, port: Int, path: String, body: String? = nil, timeoutSeconds: Int = 15) -> (status: Int, body: String)? {
        guard let fd = connected(port: port, timeoutSeconds: timeoutSeconds) else { return nil }
        defer { close(fd) }
        var text = "\(method) \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if let body { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)" } else { text += "\r\n" }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == bytes.count else { return nil }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response.append(contentsOf: buffer[0..<n])
        }
        let parts = String(decoding: response, as: UTF8.self).components(separatedBy: "\r\n\r\n")
        let fields = (parts.first?.split(separator: "\r\n").first ?? "").split(separator: " ")
        guard fields.count >= 2, let status = Int(fields[1]) else { return nil }
        return (status, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    /// Plays `path` like a player: the status, and how many body bytes arrived
    /// (at most `bytes`) before `timeout` seconds or a close.
    static func stream(port: Int, path: String, bytes wanted: Int, timeout: Double) -> (status: Int, bytes: Int) {
        // Short receive timeouts so the deadline below is checked about once a second.
        guard let fd = connected(port: port, timeoutSeconds: 1) else { return (0, 0) }
        defer { close(fd) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return (0, 0) }
        let deadline = Date().addingTimeInterval(timeout)
        var head: [UInt8] = []
        var status = 0
        var body = 0
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while Date() < deadline, body < wanted {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            if n < 0 { if errno == EAGAIN || errno == EINTR { continue } else { break } }
            if status == 0 {
                head += buffer[0..<n]
                guard let end = head.indices.dropLast(3).first(where: { head[$0] == 13 && head[$0 + 1] == 10 && head[$0 + 2] == 13 && head[$0 + 3] == 10 }) else { continue }
                let line = String(decoding: head[0..<end], as: UTF8.self).split(separator: " ")
                status = line.count > 1 ? Int(line[1]) ?? -1 : -1
                body = head.count - end - 4
            } else {
                body += n
            }
        }
        return (status, min(body, wanted))
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
