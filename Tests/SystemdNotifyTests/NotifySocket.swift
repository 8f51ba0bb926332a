import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real `AF_UNIX` datagram socket standing in for systemd's notify socket:
/// bound to a path in a temp dir, or to an abstract name.
final class NotifySocket {
    let fd: Int32
    /// What `$NOTIFY_SOCKET` should hold to reach it.
    let address: String
    private let directory: String?

    /// A socket bound to `<temp dir>/notify`.
    static func path() throws -> NotifySocket {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return try NotifySocket(name: directory + "/notify", abstract: false, directory: directory)
    }

    /// A socket bound to an abstract name (no file anywhere).
    static func abstract() throws -> NotifySocket {
        try NotifySocket(name: "acerelay-test-\(getpid())-\(UUID().uuidString.prefix(8))", abstract: true, directory: nil)
    }

    private init(name: String, abstract: Bool, directory: String?) throws {
        self.directory = directory
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var storage = sockaddr_un()
        storage.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        if abstract { bytes.insert(0, at: 0) }
        withUnsafeMutableBytes(of: &storage.sun_path) { $0.copyBytes(from: bytes) }
        let length = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + (abstract ? 0 : 1)
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(length)) }
        }
        guard bound == 0 else {
            close(fd)
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        self.fd = fd
        address = abstract ? "@" + name : name
    }

    deinit {
        close(fd)
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// The next datagram, or nil after `timeout` seconds without one.
    func receive(timeout: Double = 2) -> String? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(timeout * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count >= 0 else { return nil }
        return String(decoding: buffer.prefix(count), as: UTF8.self)
    }
}
