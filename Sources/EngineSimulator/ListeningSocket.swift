import Glibc
import Locking

/// A listening TCP socket. The acceptor thread owns it: only that thread closes it;
/// any other thread may `interrupt()` it to wake a blocked `accept()`.
final class ListeningSocket: Sendable {
    /// The file descriptor.
    let descriptor: Int32
    /// The port actually bound (the ephemeral one when 0 was asked for).
    let port: UInt16
    /// Whether `close()` ran. A lock, not an atomic: `interrupt()` must never shut down a
    /// descriptor number that `close()` already gave back to the kernel for reuse.
    private let isClosed = Locked(false)

    /// What one `accept()` call gave.
    enum AcceptOutcome {
        /// A new connection's descriptor, owned by the caller.
        case accepted(Int32)
        /// A transient failure (EINTR, an aborted handshake, fd exhaustion): call again.
        case retry
        /// The socket was interrupted or failed for good: stop accepting and close it.
        case finished
    }

    private init(descriptor: Int32, port: UInt16) {
        self.descriptor = descriptor
        self.port = port
    }

    /// Binds an IPv4 address with SO_REUSEADDR (so a revived engine rebinds its port at once) and listens.
    static func listen(host: String, port: UInt16) throws(EngineSimulatorError) -> ListeningSocket {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw .invalidBindAddress(host) }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw .cannotListen(host: host, port: port, reason: String(cString: strerror(errno)))
        }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, Glibc.listen(fd, 128) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw .cannotListen(host: host, port: port, reason: reason)
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return ListeningSocket(descriptor: fd, port: UInt16(bigEndian: actual.sin_port))
    }

    /// Blocks until a connection arrives, the socket is interrupted, or it fails.
    func accept() -> AcceptOutcome {
        let fd = Glibc.accept(descriptor, nil, nil)
        if fd >= 0 {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            return .accepted(fd)
        }
        switch errno {
        case EINTR, ECONNABORTED, EPROTO:
            return .retry
        case EMFILE, ENFILE, ENOBUFS, ENOMEM:
            // Out of descriptors or memory: back off rather than spin; connections wait in the backlog.
            usleep(50_000)
            return .retry
        default:
            // EINVAL once interrupt() has shut the socket down.
            return .finished
        }
    }

    /// Wakes a blocked `accept()` (Linux returns EINVAL after shutdown(2) on a listening socket)
    /// and makes new connection attempts fail. Safe from any thread at any time: once closed, it does nothing.
    func interrupt() {
        isClosed.withLock { closed in
            if !closed { _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR)) }
        }
    }

    /// Closes the descriptor; the owner calls this exactly once.
    func close() {
        isClosed.withLock { closed in
            precondition(!closed, "listening socket closed twice")
            closed = true
            Glibc.close(descriptor)
        }
    }

    /// Whether `close()` has run, so the port is free to bind again.
    var closed: Bool { isClosed.withLock { $0 } }

    deinit {
        assert(isClosed.withLock { $0 }, "listening socket on port \(port) was never closed")
    }
}
