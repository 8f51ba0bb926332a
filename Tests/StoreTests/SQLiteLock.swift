import Foundation
import Testing

/// Another process holding a database's write lock: the sqlite3 command-line
/// tool inside `BEGIN EXCLUSIVE`, until `release()` commits and quits.
final class SQLiteLock {
    private let process = Process()
    private let input = Pipe()

    /// Returns once sqlite3 says it holds the lock; it also writes the setting `lock` = 1.
    init(path: String) throws {
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        process.arguments = [path]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(".timeout 10000\nBEGIN EXCLUSIVE;\nINSERT OR REPLACE INTO settings(key, value) VALUES ('lock', '1');\nSELECT 'locked';\n".utf8))
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains("locked") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty {
                process.terminate()
                throw LockFailure(description: "sqlite3 exited before taking the lock")
            }
            seen += chunk
        }
    }

    /// Commits and waits for sqlite3 to exit.
    func release() {
        guard process.isRunning else { return }
        input.fileHandleForWriting.write(Data("COMMIT;\n.quit\n".utf8))
        process.waitUntilExit()
    }

    deinit { if process.isRunning { process.terminate() } }

    struct LockFailure: Error, CustomStringConvertible { let description: String }
}
