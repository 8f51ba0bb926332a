import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Tells systemd how the service is doing, over the notify protocol of
/// `sd_notify(3)`, without libsystemd: one `AF_UNIX` `SOCK_DGRAM` datagram of
/// newline-separated `KEY=VALUE` lines to the socket named by `$NOTIFY_SOCKET`.
///
/// Without `$NOTIFY_SOCKET` (not started by systemd, or a unit that is not
/// `Type=notify`) every call does nothing and returns `false`, so callers
/// never need to check first.
public struct SystemdNotifier: Sendable {
    /// Where datagrams go, or nil when systemd is not listening.
    public let socketPath: String?

    /// How often systemd expects `WATCHDOG=1` (`$WATCHDOG_USEC`), or nil when
    /// no watchdog is set for this process. Ping at half this interval.
    public let watchdogInterval: Duration?

    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`.
    ///
    /// `$WATCHDOG_PID`, when set, names the process the watchdog belongs to: if
    /// it is not `pid`, the watchdog is another process's and this one has none.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, pid: pid_t = getpid()) {
        let path = environment["NOTIFY_SOCKET"] ?? ""
        // Only absolute paths and abstract names are valid; anything else (e.g. a
        // vsock address of newer systemd) is not a socket this type can reach.
        socketPath = path.hasPrefix("/") || path.hasPrefix("@") ? path : nil
        watchdogInterval = Self.watchdogInterval(environment: environment, pid: pid)
    }

    /// Whether anything is listening; false means every call is a no-op.
    public var isEnabled: Bool { socketPath != nil }

    /// `READY=1`: start-up is complete and the service serves.
    @discardableResult
    public func ready() -> Bool { send(["READY=1"]) }

    /// `STATUS=…`: one line shown by `systemctl status`.
    @discardableResult
    public func status(_ text: String) -> Bool {
        // A newline would end the field and start a bogus one.
        send(["STATUS=" + text.replacingOccurrences(of: "\n", with: " ")])
    }

    /// `WATCHDOG=1`: the keep-alive. Call it only when the service is known to
    /// make progress (see `WatchdogGate`), never from a timer alone.
    @discardableResult
    public func watchdog() -> Bool { send(["WATCHDOG=1"]) }

    /// `STOPPING=1`: shutdown has begun.
    @discardableResult
    public func stopping() -> Bool { send(["STOPPING=1"]) }

    /// Sends `fields` (each `KEY=VALUE`) as one datagram. Returns whether the
    /// datagram was sent; false when disabled or the socket is unreachable.
    @discardableResult
    public func send(_ fields: [String]) -> Bool {
        guard let socketPath, !fields.isEmpty else { return false }
        let payload = Array(fields.joined(separator: "\n").utf8)
        guard var address = Self.address(socketPath) else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let sent = withUnsafePointer(to: &address.storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                payload.withUnsafeBytes { bytes in
                    sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), sockaddrPointer, address.length)
                }
            }
        }
        return sent == payload.count
    }

    /// A `sockaddr_un` for a path or an abstract name (`@name`: the `@` becomes
    /// a NUL byte and the length covers the name only, with no trailing NUL).
    static func address(_ path: String) -> (storage: sockaddr_un, length: socklen_t)? {
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        var storage = sockaddr_un()
        let capacity = MemoryLayout.size(ofValue: storage.sun_path)
        // A path needs room for its terminating NUL; an abstract name does not have one.
        guard bytes.count > (abstract ? 1 : 0), bytes.count <= (abstract ? capacity : capacity - 1) else { return nil }
        storage.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage.sun_path) { sunPath in
            sunPath.copyBytes(from: bytes)
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        let length = pathOffset + bytes.count + (abstract ? 0 : 1)
        return (storage, socklen_t(length))
    }

    private static func watchdogInterval(environment: [String: String], pid: pid_t) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let usec = UInt64(text), usec > 0 else { return nil }
        if let owner = environment["WATCHDOG_PID"], !owner.isEmpty {
            guard let ownerPID = pid_t(owner), ownerPID == pid else { return nil }
        }
        return .microseconds(Int64(clamping: usec))
    }
}
