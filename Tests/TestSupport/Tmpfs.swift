import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A tmpfs of a few MiB that a test mounts for itself: a filesystem it can fill up
/// under a store or a running binary without touching the machine's own disks.
/// Unmounted by `unmount()` or when the value goes away; its mount point is removed.
///
/// Mounting needs root or CAP_SYS_ADMIN. `refusal` probes that once, so a test can
/// say through `.enabled(if: Tmpfs.canMount, ...)` that it did not run, rather than pass.
public final class Tmpfs {
    /// The mount point.
    public let path: String
    private let mountPoint: TestDirectory
    private var mounted = true

    /// Mounts a tmpfs of `size` (`mount -o size=`: "2m", "64k") at a fresh directory.
    public init(size: String) throws {
        mountPoint = try TestDirectory("tmpfs")
        path = mountPoint.path
        guard mount("tmpfs", path, "tmpfs", 0, "size=\(size)") == 0 else {
            throw TestFailure("cannot mount a tmpfs at \(path): \(String(cString: strerror(errno))) (needs root or CAP_SYS_ADMIN)")
        }
    }

    deinit { unmount() }

    /// Unmounts it; lazily when something (a killed child's last descriptors) still holds it.
    public func unmount() {
        guard mounted else { return }
        mounted = false
        if umount2(path, 0) != 0 { _ = umount2(path, Int32(MNT_DETACH)) }
    }

    /// Writes `name` until the filesystem has no block left (ENOSPC) and returns its path.
    public func fill(_ name: String = "filler") throws -> String {
        let filler = path + "/" + name
        let fd = open(filler, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard fd >= 0 else { throw TestFailure("cannot create \(filler): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let block = [UInt8](repeating: 0xA5, count: 64 * 1024)
        // A write that finds less room than a block writes what fits; the next one meets ENOSPC.
        while true {
            let written = block.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written >= 0 { continue }
            if errno == EINTR { continue }
            if errno == ENOSPC { return filler }
            throw TestFailure("writing \(filler) failed before the filesystem was full: \(String(cString: strerror(errno)))")
        }
    }

    /// Why a tmpfs cannot be mounted here (not root, no CAP_SYS_ADMIN), or nil when it can.
    public static let refusal: String? = {
        do {
            try Tmpfs(size: "64k").unmount()
            return nil
        } catch {
            return "\(error)"
        }
    }()

    /// Whether tests that mount a tmpfs can run here.
    public static var canMount: Bool { refusal == nil }
}
