import Glibc
import Synchronization

/// A listening TCP socket. The acceptor thread owns it: only that thread closes it;
/// any other thread may `interrupt()` it to wake a blocked `accept()`.
final class ListeningSocket: Sendable {
    /// The file descriptor.
    let descriptor: Int32
    /// The port actually bound (the ephemeral one when 0 was asked for).
    let port: UInt16
    private let isClosed = Atomic<Bool>(false)

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
    /// and makes new connection attempts fail. Safe from any thread while the socket is open.
    func interrupt() {
        _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR))
    }

    /// Closes the descriptor; the owner calls this exactly once.
    func close() {
        let wasClosed = isClosed.exchange(true, ordering: .acquiringAndReleasing)
        precondition(!wasClosed, "listening socket closed twice")
        Glibc.close(descriptor)
    }

    /// Whether `close()` has run, so the port is free to bind again.
    var closed: Bool { isClosed.load(ordering: .acquiring) }

    deinit {
        assert(isClosed.load(ordering: .relaxed), "listening socket on port \(port) was never closed")
    }
}

/// One accepted TCP connection, served by one thread that owns the descriptor.
///
/// Other threads may only `abort()` it (under the registry's lock), which shuts the
/// socket down so the owner's blocked calls return; only the owner closes it.
final class ClientConnection: Sendable {
    /// Registry key.
    let id: Int
    /// The file descriptor.
    let descriptor: Int32
    private let isAborted = Atomic<Bool>(false)
    private let isClosed = Atomic<Bool>(false)

    /// How long a blocked send waits before it re-checks whether to go on.
    private static let sendTimeoutMicroseconds = 250_000
    /// How long a connection may sit idle between requests.
    private static let receiveTimeoutSeconds = 15

    init(id: Int, descriptor: Int32) {
        self.id = id
        self.descriptor = descriptor
        var send = timeval(tv_sec: 0, tv_usec: Self.sendTimeoutMicroseconds)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &send, socklen_t(MemoryLayout<timeval>.size))
        var receive = timeval(tv_sec: Self.receiveTimeoutSeconds, tv_usec: 0)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &receive, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Whether another thread aborted this connection (engine died or shut down).
    var aborted: Bool { isAborted.load(ordering: .acquiring) }

    /// Shuts the socket down so the owner's blocked calls return. Call only while the
    /// connection is registered (the registry's lock keeps the descriptor open meanwhile).
    func abort() {
        isAborted.store(true, ordering: .releasing)
        _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR))
    }

    /// Reads into `buffer`; returns the byte count, 0 at end of stream, or nil on error or idle timeout.
    func receive(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        while true {
            let n = recv(descriptor, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            return nil
        }
    }

    /// Sends every byte, retrying short writes. Returns false when the peer is gone, the
    /// connection was aborted, or `shouldContinue` turned false while the peer was not reading.
    func sendAll(_ bytes: UnsafeRawBufferPointer, shouldContinue: () -> Bool = { true }) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = send(descriptor, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n > 0 {
                offset += n
                continue
            }
            switch errno {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                // SO_SNDTIMEO expired with the peer not reading: check why we are still sending.
                if aborted || !shouldContinue() { return false }
            default:
                return false
            }
        }
        return true
    }

    /// Sends every byte of `bytes`; see `sendAll(_:shouldContinue:)`.
    func sendAll(_ bytes: [UInt8], shouldContinue: () -> Bool = { true }) -> Bool {
        bytes.withUnsafeBytes { sendAll($0, shouldContinue: shouldContinue) }
    }

    /// Waits up to `milliseconds` and says whether the peer has gone (or the connection was aborted).
    ///
    /// Bytes the peer sends meanwhile are read and dropped: a client that is being streamed
    /// to has nothing to say, and unread input would make every later wait return at once.
    func peerHasGone(waitingMilliseconds milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let ready = poll(&entry, 1, milliseconds)
        if aborted { return true }
        guard ready > 0 else { return false }
        if Int32(entry.revents) & (Int32(POLLHUP) | Int32(POLLERR) | Int32(POLLNVAL)) != 0 { return true }
        var scratch: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        let n = withUnsafeMutableBytes(of: &scratch) {
            recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT))
        }
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
    }

    /// Closes the descriptor; only the owning thread calls this, once, after deregistering.
    func close() {
        let wasClosed = isClosed.exchange(true, ordering: .acquiringAndReleasing)
        precondition(!wasClosed, "connection \(id) closed twice")
        Glibc.close(descriptor)
    }

    deinit {
        assert(isClosed.load(ordering: .relaxed), "connection \(id) was never closed")
    }
}

/// Every open connection, so the engine can abort them all when it dies or shuts down.
final class ConnectionRegistry: Sendable {
    private struct State {
        var nextID = 1
        var open: [Int: ClientConnection] = [:]
    }

    private let state = Mutex(State())

    /// Wraps an accepted descriptor and registers it.
    func adopt(_ descriptor: Int32) -> ClientConnection {
        state.withLock { state in
            let connection = ClientConnection(id: state.nextID, descriptor: descriptor)
            state.nextID += 1
            state.open[connection.id] = connection
            return connection
        }
    }

    /// Deregisters and closes a connection; its owning thread calls this when done.
    func release(_ connection: ClientConnection) {
        // Deregister first: once out of the map, no abort() can touch a descriptor number the
        // kernel may hand out again after close.
        _ = state.withLock { $0.open.removeValue(forKey: connection.id) }
        connection.close()
    }

    /// Aborts every open connection.
    func abortAll() {
        state.withLock { state in
            for connection in state.open.values { connection.abort() }
        }
    }

    /// Connections still open.
    var openCount: Int { state.withLock { $0.open.count } }
}
