import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A real `AF_UNIX` datagram socket standing in for systemd's notify socket:
/// bound to a path in a temp dir, or to an abstract name.
final class NotifySocket {
    let fd: Int32
    /// What `$NOTIFY_SOCKET` should hold to reach it.
    let address: String
    private let directory: TestDirectory?

    /// A socket bound to `<temp dir>/notify`.
    static func path() throws -> NotifySocket {
        let directory = try TestDirectory("notify")
        return try NotifySocket(name: directory.file("notify"), abstract: false, directory: directory)
    }

    /// A socket bound to an abstract name (no file anywhere).
    static func abstract() throws -> NotifySocket {
        try NotifySocket(name: "acerelay-test-\(getpid())-\(UUID().uuidString.prefix(8))", abstract: true, directory: nil)
    }

    private init(name: String, abstract: Bool, directory: TestDirectory?) throws {
        self.directory = directory
        (fd, address) = try UnixDatagram.bind(name, abstract: abstract)
    }

    deinit { close(fd) }

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
