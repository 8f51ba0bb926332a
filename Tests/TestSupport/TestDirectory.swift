import Foundation
import Locking
#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under the system's temporary directory, named
/// `acerelay-<label>-<random>`, removed with everything in it when the value goes
/// away — and, for paths handed out with `path(_:)`, when the test process exits.
///
/// The suite used to leave hundreds of `acerelay-*` data directories, stderr files and
/// media files in /tmp: a helper returned a path and nobody owned it.
public final class TestDirectory: Sendable {
    /// The directory's absolute path.
    public let path: String

    /// Creates the directory (mkdtemp: a name no other test can have).
    public init(_ label: String) throws {
        path = try Self.make(label)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    public var url: URL { URL(fileURLWithPath: path) }

    /// `path/name`.
    public func file(_ name: String) -> String { path + "/" + name }

    /// A new directory's path, removed when the test process exits, for call sites
    /// that hand a path on (`--data-dir`) and own nothing to remove it with.
    public static func path(_ label: String) -> String {
        do {
            let path = try make(label)
            removeAtExit(path)
            return path
        } catch {
            // An unwritable /tmp fails the test at its first use of the path, naming it.
            return NSTemporaryDirectory() + "acerelay-\(label)-unavailable"
        }
    }

    /// Removes `path` (a file or a whole directory) when the test process exits.
    public static func removeAtExit(_ path: String) {
        let first = leftovers.withLock { list in
            list.append(path)
            return list.count == 1
        }
        if first { atexit { TestDirectory.removeLeftovers() } }
    }

    private static let leftovers = Locked<[String]>([])

    private static func removeLeftovers() {
        for path in leftovers.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
    }

    private static func make(_ label: String) throws -> String {
        let base = (ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp")
        var template = Array("\(base.hasSuffix("/") ? String(base.dropLast()) : base)/acerelay-\(label)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in mkdtemp(buffer.baseAddress!).map { String(cString: $0) } }
        guard let made else {
            throw TestFailure("cannot create a directory in \(base): \(String(cString: strerror(errno)))")
        }
        return made
    }
}
