import Glibc
import Synchronization

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
