import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process a test starts: a tool run to its end with its output captured
/// (`ChildProcess.run`), or a server left running (`ChildProcess(...)`) with its stderr
/// in a file and a stop that escalates from SIGTERM to SIGKILL.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is only asked to signal and report whether it runs, which
    // Foundation allows from any thread; the other stored properties are immutable.

    /// What a finished run printed and how it ended.
    public struct Outcome: Sendable {
        /// The exit status (or the signal number when killed).
        public var status: Int32
        /// Standard output and standard error together, in the order written.
        public var output: String
    }

    /// Runs `executable` (a path, or a name looked up on PATH) to its end and returns what it printed.
    /// - Parameters:
    ///   - environment: variables set on top of this process's environment.
    ///   - input: bytes written to its standard input, which is then closed (else it reads nothing).
    ///   - includeStandardError: false leaves standard error out of `output` (discarded).
    ///   - timeout: after this many seconds the child is killed (SIGKILL) and the run is
    ///     what it printed until then; nil waits as long as it takes.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                           input: [UInt8]? = nil, includeStandardError: Bool = true, timeout: Double? = nil) throws -> Outcome {
        guard let path = executable.contains("/") ? executable : find(executable) else {
            throw TestFailure("\(executable) is not installed (not found on PATH)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, given in given } }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = includeStandardError ? pipe : FileHandle.nullDevice
        let stdin = input.map { _ in Pipe() }
        process.standardInput = stdin ?? FileHandle.nullDevice
        try process.run()
        if let stdin, let input {
            // Written from another thread: a child that answers before it has read everything
            // would otherwise leave both sides blocked on full pipes.
            let writer = stdin.fileHandleForWriting
            DispatchQueue.global().async {
                writer.write(Data(input))
                try? writer.close()
            }
        }
        let killer = timeout.map { seconds in
            let item = DispatchWorkItem { if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) } }
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: item)
            return item
        }
        // Read before waiting: a child blocked on a full pipe would never exit.
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        killer?.cancel()
        return Outcome(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    /// The full path of `name` on PATH (and in /usr/sbin, /usr/bin, /sbin, which not every PATH has), or nil.
    public static func find(_ name: String, extraDirectories: [String] = []) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin", "/sbin"] + extraDirectories
        return directories.lazy.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The executable SwiftPM built beside this test bundle (`acerelay`, `acestream-engine-sim`).
    public static func built(_ name: String) -> URL {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while directory.path != "/", !FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent(name)
    }

    /// The running process.
    public let process: Process
    /// Where its standard error goes (nil: discarded).
    public let errorsPath: String?

    /// Starts `executable` with `arguments`; standard output is discarded (or goes to
    /// `standardOutput`), standard error goes to `errorsPath` (created empty when missing;
    /// else to `standardError`, else nowhere) — a pipe nobody reads would fill up and
    /// block the child once it logs enough.
    /// - Parameter environment: the whole environment when `inheritEnvironment` is false,
    ///   else variables set on top of this process's.
    public init(_ executable: URL, _ arguments: [String], environment: [String: String] = [:], inheritEnvironment: Bool = true,
                errorsPath: String? = nil, standardError: FileHandle? = nil, standardOutput: FileHandle? = nil) throws {
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = inheritEnvironment
            ? ProcessInfo.processInfo.environment.merging(environment) { _, given in given } : environment
        self.errorsPath = errorsPath
        if let errorsPath {
            // An existing file is kept as it is: a caller may have handed its inode on (JOURNAL_STREAM).
            if !FileManager.default.fileExists(atPath: errorsPath) {
                _ = FileManager.default.createFile(atPath: errorsPath, contents: nil)
            }
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorsPath))
        } else {
            process.standardError = standardError ?? FileHandle.nullDevice
        }
        process.standardOutput = standardOutput ?? FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    public var pid: pid_t { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }
    /// The exit status, once it exited.
    public var status: Int32 { process.terminationStatus }

    /// True once the process exited, waiting up to `timeout` seconds.
    public func waitForExit(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        guard !process.isRunning else { return false }
        process.waitUntilExit()
        return true
    }

    /// Sends `signal` (SIGTERM by default) and waits up to `within` seconds for the exit,
    /// then SIGKILL; returns whether it exited in time on its own.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM, within seconds: Double = 10) -> Bool {
        guard process.isRunning else { return true }
        Glibc.kill(process.processIdentifier, signal)
        if waitForExit(timeout: seconds) { return true }
        kill()
        return false
    }

    /// SIGKILL at once, as a crash; then reaps it.
    public func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// What it wrote to standard error so far, line by line.
    public var errorLines: [String] {
        guard let errorsPath else { return [] }
        let text = (try? String(contentsOfFile: errorsPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }
}
