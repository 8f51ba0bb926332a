import Foundation
import Locking
#if canImport(Glibc)
import Glibc
#endif

/// TCP sockets on loopback addresses (127.0.0.1, and 127.0.0.2 and the like for another host), the only ones the tests use.
public enum Loopback {
    /// A port on 127.0.0.1 that was free a moment ago: bound to port 0, read back, closed.
    /// Nothing listens on it afterwards, so it also serves as a port that refuses connections.
    /// Never one this process was handed before: the kernel may give a just-closed port to
    /// the next bind, and two calls in a row (a stream port and an API port) once returned
    /// the same one.
    public static func freePort() throws -> UInt16 {
        for _ in 0..<64 {
            let port = try anyFreePort()
            if handedOut.withLock({ $0.insert(port).inserted }) { return port }
        }
        throw TestFailure("the kernel keeps offering ports this process was already given")
    }

    private static let handedOut = Locked<Set<UInt16>>([])

    private static func anyFreePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard let port = bindToAnyPort(fd, host: "127.0.0.1", backlog: nil) else {
            throw TestFailure("cannot bind a port on 127.0.0.1: \(String(cString: strerror(errno)))")
        }
        return port
    }

    /// A listening TCP socket on `host` at a port the kernel picks; the caller accepts on
    /// `fd` and closes it. Neither SO_REUSEADDR nor SO_REUSEPORT is set, so the port is held
    /// as another program would hold it.
    /// - Parameter host: 127.0.0.1, or another loopback address (127.0.0.2) for "another host".
    public static func listen(address host: String = "127.0.0.1", backlog: Int32 = 64) throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        guard let port = bindToAnyPort(fd, host: host, backlog: backlog) else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw TestFailure("cannot listen on \(host): \(reason)")
        }
        return (fd, port)
    }

    /// Whether `port` on 127.0.0.1 can be bound right now.
    public static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = Self.address(port: UInt16(port))
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// A blocking socket connected to 127.0.0.1:`port`.
    /// - Parameters:
    ///   - source: a local address to connect from (e.g. `127.0.0.3`), to look like another host.
    ///   - receiveBuffer: SO_RCVBUF; a small one makes a player that does not read fill up fast.
    /// - Throws: `TestHTTPError.connectFailed` with the errno (ECONNREFUSED when nothing listens).
    public static func connect(port: UInt16, source: String? = nil, receiveBuffer: Int32? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestHTTPError.connectFailed(errno: errno) }
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                let code = errno
                close(fd)
                throw TestHTTPError.connectFailed(errno: code)
            }
        }
        // Set before connect: the window the peer sees is fixed by the handshake.
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = Self.address(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw TestHTTPError.connectFailed(errno: code)
        }
        return fd
    }

    /// Binds `fd` to `host` at a port the kernel picks, listens when `backlog` is given,
    /// and returns the port; nil with `errno` set when a call failed.
    private static func bindToAnyPort(_ fd: Int32, host: String, backlog: Int32?) -> UInt16? {
        var address = Self.address(port: 0, host: host)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 }
        }
        guard bound else { return nil }
        if let backlog, Glibc.listen(fd, backlog) != 0 { return nil }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
        }
        return named ? UInt16(bigEndian: address.sin_port) : nil
    }

    private static func address(port: UInt16, host: String = "127.0.0.1") -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr(host)
        return address
    }
}
