import CSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Finds out whether another socket already listens on a TCP address, before
/// the relay binds it with SO_REUSEPORT.
///
/// SO_REUSEPORT lets any socket of the same user bind the same address, and the
/// kernel then spreads new connections over all of them: a second relay on the
/// same port would start without an error and take half the players. A plain
/// bind (SO_REUSEADDR only) fails with EADDRINUSE while any socket listens on
/// the port, with or without SO_REUSEPORT, and succeeds over TIME_WAIT leftovers.
enum PortProbe {
    /// Throws `RelayError.portInUse` when `address`'s port has a listener.
    static func ensureFree(_ address: UnsafePointer<sockaddr>, length: socklen_t, family: Int32, host: String, port: UInt16) throws {
        guard port != 0 else { return }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        defer { Syscall.close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if bind(fd, address, length) != 0, errno == EADDRINUSE {
            throw RelayError.portInUse(address: "\(host):\(port)", holder: listenerProcess(port: port))
        }
    }

    /// "pid N (name)" of a process with a socket listening on `port`, when /proc shows one.
    static func listenerProcess(port: UInt16) -> String? {
        let inodes = listeningInodes(port: port)
        guard !inodes.isEmpty, let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for pid in pids where pid.allSatisfy(\.isNumber) {
            // Other users' descriptors are unreadable without privileges: skipped.
            guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { continue }
            for fd in fds {
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                      target.hasPrefix("socket:["), let inode = UInt64(target.dropFirst(8).dropLast()),
                      inodes.contains(inode) else { continue }
                let name = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                return name.map { "pid \(pid) (\($0))" } ?? "pid \(pid)"
            }
        }
        return nil
    }

    /// Socket inodes in LISTEN state on `port`, from /proc/net/tcp and tcp6.
    private static func listeningInodes(port: UInt16) -> Set<UInt64> {
        var inodes: Set<UInt64> = []
        let wanted = String(format: "%04X", port)
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            // Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 9, fields[3] == "0A", fields[1].hasSuffix(":" + wanted),
                      let inode = UInt64(fields[9]), inode != 0 else { continue }
                inodes.insert(inode)
            }
        }
        return inodes
    }
}
