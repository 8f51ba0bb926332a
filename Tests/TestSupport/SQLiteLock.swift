import Foundation

/// Another process holding a database's write lock: the sqlite3 command-line
/// tool inside `BEGIN EXCLUSIVE`, until `release()` commits and quits.
public final class SQLiteLock {
    private let process = Process()
    private let input = Pipe()

    /// Returns once sqlite3 says it holds the lock. `whileLocked` is SQL it runs
    /// inside the transaction, committed by `release()`.
    public init(path: String, whileLocked: String = "") throws {
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        process.arguments = [path]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(".timeout 10000\nBEGIN EXCLUSIVE;\n\(whileLocked)\nSELECT 'locked';\n".utf8))
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains("locked") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty {
                process.terminate()
                throw TestFailure("sqlite3 exited before taking the lock on \(path)")
            }
            seen += chunk
        }
    }

    /// Commits and waits for sqlite3 to exit.
    public func release() {
        guard process.isRunning else { return }
        input.fileHandleForWriting.write(Data("COMMIT;\n.quit\n".utf8))
        process.waitUntilExit()
    }

    deinit { if process.isRunning { process.terminate() } }
}
