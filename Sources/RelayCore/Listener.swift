import CSupport
#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket. Each worker has its own, bound with SO_REUSEPORT to
/// the same address, so the kernel spreads new connections over the loops.
final class ListeningSocket {
    private(set) var fd: Int32
    let port: UInt16

    /// - Parameter exclusive: refuse (`RelayError.portInUse`) when any other socket
    ///   listens on the port already; the first of the workers' sockets checks.
    init(host: String, port: UInt16, exclusive: Bool = false, backlog: Int32 = 4096) throws {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let info = result else {
            throw RelayError.invalidListenAddress("\(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        if exclusive {
            try PortProbe.ensureFree(info.pointee.ai_addr, length: info.pointee.ai_addrlen, family: info.pointee.ai_family,
                                     host: host, port: port)
        }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let error = SystemError("bind \(host):\(port)")
            Syscall.close(fd)
            throw error
        }
        guard listen(fd, backlog) == 0 else {
            let error = SystemError("listen")
            Syscall.close(fd)
            throw error
        }
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        self.fd = fd
        // sin_port and sin6_port both sit at byte offset 2.
        self.port = withUnsafeBytes(of: address) { UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self)) }
    }

    deinit { precondition(fd < 0, "ListeningSocket released without close()") }

    /// Accepts one pending connection, non-blocking; nil when none is waiting.
    func accept() throws -> Int32? {
        while true {
            let client = csupport_accept4_nonblock(fd)
            if client >= 0 { return client }
            switch errno {
            case EINTR, ECONNABORTED: continue
            case EAGAIN: return nil
            // Out of descriptors or memory: leave the connection queued and try on the next event.
            case EMFILE, ENFILE, ENOBUFS, ENOMEM: throw SystemError("accept4")
            default: throw SystemError("accept4")
            }
        }
    }

    func close() {
        guard fd >= 0 else { return }
        Syscall.close(fd)
        fd = -1
    }
}

/// Errors the relay reports to whoever starts it.
public enum RelayError: Error, CustomStringConvertible, Sendable {
    case invalidListenAddress(String)
    case listenFailed(String)
    /// Another socket already listens on the stream port (`holder` names its process when /proc shows it).
    case portInUse(address: String, holder: String?)

    public var description: String {
        switch self {
        case .invalidListenAddress(let detail): return "invalid listen address \(detail)"
        case .listenFailed(let detail): return "cannot listen: \(detail)"
        case .portInUse(let address, let holder):
            let who = holder.map { " by \($0)" } ?? ""
            return "cannot listen on \(address): the port is already in use\(who); stop the other relay or choose another port"
        }
    }
}

/// The peer's address as text, for status pages (never for metric labels).
func peerAddress(of fd: Int32) -> String {
    var address = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let ok = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) == 0 }
    }
    guard ok else { return "unknown" }
    var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
    var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
    let status = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            getnameinfo($0, length, &host, socklen_t(host.count), &service, socklen_t(service.count), NI_NUMERICHOST | NI_NUMERICSERV)
        }
    }
    guard status == 0 else { return "unknown" }
    func text(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    return "\(text(host)):\(text(service))"
}
