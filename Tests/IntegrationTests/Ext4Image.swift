import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An ext4 filesystem in a file of the test's own, on a loop device, mounted with
/// `errors=remount-ro`, that the test can turn read-only under files open for writing.
///
/// `mount -o remount,ro` cannot do that: the kernel answers EBUSY while any file on the
/// filesystem (or on a bind mount of it) is open for writing, and SQLite keeps the database,
/// its WAL and its shared memory open for writing as long as it runs. What the kernel does
/// allow is what happens after an I/O error: ext4's `trigger_fs_error` (in sysfs) raises a
/// filesystem error, and `errors=remount-ro` makes ext4 read-only at once, open files and all.
/// It stays so until it is unmounted, checked (`e2fsck`) and mounted again: `repair()`.
final class Ext4Image {
    /// The mount point.
    let path: String
    private let scratch: TestDirectory
    private let image: String
    /// `/dev/loopN`.
    private let device: String
    private var mounted = false
    private var attached = true

    init(megabytes: Int = 16) throws {
        scratch = try TestDirectory("ext4")
        image = scratch.file("image")
        path = scratch.file("mnt")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        guard FileManager.default.createFile(atPath: image, contents: nil), truncate(image, off_t(megabytes) << 20) == 0 else {
            throw TestFailure("cannot make a \(megabytes) MiB image at \(image): \(String(cString: strerror(errno)))")
        }
        try Self.tool("mkfs.ext4", ["-q", "-F", image])
        device = try Self.tool("losetup", ["--find", "--show", image]).trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            try mount()
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Unmounts it and gives the loop device back.
    func close() {
        unmount()
        if attached { _ = try? Self.tool("losetup", ["-d", device]) }
        attached = false
    }

    /// Makes the kernel turn the filesystem read-only, as after an I/O error.
    func failReadOnly() throws {
        let name = (device as NSString).lastPathComponent
        // Only ever this image's own device: the same file of the machine's root filesystem
        // would turn that read-only for everyone.
        guard name.hasPrefix("loop"), name.dropFirst(4).allSatisfy(\.isNumber), Self.mountSource(of: path) == device else {
            throw TestFailure("\(path) is not mounted from this image's loop device \(device): not triggering an error")
        }
        let trigger = "/sys/fs/ext4/\(name)/trigger_fs_error"
        let fd = open(trigger, O_WRONLY)
        guard fd >= 0 else { throw TestFailure("cannot open \(trigger): \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        guard Glibc.write(fd, "1", 1) == 1 else { throw TestFailure("writing \(trigger) failed: \(String(cString: strerror(errno)))") }
        let probe = open(path + "/written-after-the-error", O_WRONLY | O_CREAT, 0o600)
        guard probe < 0, errno == EROFS else {
            if probe >= 0 { Glibc.close(probe) }
            throw TestFailure("\(path) is still writable after the error")
        }
    }

    /// Unmounts, checks and repairs the filesystem (`e2fsck -fy`), and mounts it again, writable.
    func repair() throws {
        unmount()
        let check = try ChildProcess.run("e2fsck", ["-fy", image])
        // 1 and 2: errors were corrected; 4 and up: some were not.
        guard check.status < 4 else { throw TestFailure("e2fsck could not repair \(image) (\(check.status)): \(check.output)") }
        try mount()
    }

    private func mount() throws {
        try Self.tool("mount", ["-o", "errors=remount-ro", device, path])
        mounted = true
    }

    private func unmount() {
        guard mounted else { return }
        mounted = false
        _ = try? Self.tool("umount", [path])
    }

    /// Runs a system tool to its end; its output, or a failure with it.
    @discardableResult
    private static func tool(_ name: String, _ arguments: [String]) throws -> String {
        let run = try ChildProcess.run(name, arguments)
        guard run.status == 0 else { throw TestFailure("\(name) \(arguments.joined(separator: " ")) failed (\(run.status)): \(run.output)") }
        return run.output
    }

    /// The device `path` is mounted from, from /proc/self/mountinfo.
    private static func mountSource(of path: String) -> String? {
        let table = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        // "id parent major:minor root mountpoint options [optional fields] - type source superoptions"
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count > 5, fields[4] == path, let dash = fields.firstIndex(of: "-"), fields.count > dash + 2 else { continue }
            return fields[dash + 2]
        }
        return nil
    }

    /// Why such an image cannot be made here (not root, no loop device, no mkfs.ext4, no
    /// `trigger_fs_error`), or nil when it can; probed once.
    static let refusal: String? = {
        do {
            let probe = try Ext4Image(megabytes: 8)
            defer { probe.close() }
            let name = (probe.device as NSString).lastPathComponent
            guard FileManager.default.fileExists(atPath: "/sys/fs/ext4/\(name)/trigger_fs_error") else {
                return "this kernel has no /sys/fs/ext4/\(name)/trigger_fs_error"
            }
            return nil
        } catch {
            return "\(error)"
        }
    }()
}
