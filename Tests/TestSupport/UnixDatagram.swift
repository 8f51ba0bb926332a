import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `AF_UNIX` datagram sockets, as systemd's notify socket is one.
public enum UnixDatagram {
    /// A datagram socket (close-on-exec) bound to `name`: a file path, or with `abstract`
    /// a name in the abstract namespace (no file anywhere). Returns the descriptor, which
    /// the caller closes, and the address as `$NOTIFY_SOCKET` spells it (`@name` when abstract).
    public static func bind(_ name: String, abstract: Bool) throws -> (fd: Int32, address: String) {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket(AF_UNIX) failed: errno \(errno)") }
        var storage = sockaddr_un()
        storage.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        if abstract { bytes.insert(0, at: 0) }
        withUnsafeMutableBytes(of: &storage.sun_path) { $0.copyBytes(from: bytes) }
        // A path's length counts its NUL; an abstract name is exactly its bytes.
        let length = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + (abstract ? 0 : 1)
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(length)) }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw TestFailure("bind of the unix datagram socket \(abstract ? "@" : "")\(name) failed: errno \(code)")
        }
        return (fd, abstract ? "@" + name : name)
    }
}
