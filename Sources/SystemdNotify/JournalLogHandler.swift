import Foundation
import Logging
import Locking
#if canImport(Glibc)
import Glibc
#endif

/// A swift-log handler for stderr connected to the systemd journal: one line
/// per event, a syslog priority prefix (`<3>` … `<7>`) so `journalctl -p
/// warning` filters, no timestamp of its own (the journal adds one), and the
/// metadata appended as `key=value`.
///
/// Use it only when `stderrIsJournal()` says so; a terminal or a file wants
/// timestamps and no prefixes.
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    /// The logger's label, written before the message.
    public let label: String
    private let output: @Sendable (String) -> Void

    /// A handler writing to stderr.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.init(label: label, metadataProvider: metadataProvider, output: JournalLogHandler.writeToStandardError)
    }

    /// A handler writing each finished line (with its newline) to `output`.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil, output: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        output(Self.line(level: event.level, label: label, message: event.message.description, metadata: merged))
    }

    /// The syslog priority prefix journald reads (`SyslogLevelPrefix=yes`).
    public static func prefix(for level: Logger.Level) -> String {
        switch level {
        case .critical, .error: "<3>"
        case .warning: "<4>"
        case .notice: "<5>"
        case .info: "<6>"
        case .debug, .trace: "<7>"
        }
    }

    /// One event as the journal gets it: `<p>label: message k=v k2=v2\n`, keys sorted.
    /// A multi-line message repeats the prefix on each line, so none of it
    /// falls back to the default priority.
    public static func line(level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        let prefix = prefix(for: level)
        var text = "\(prefix)\(label): \(message)"
        for key in metadata.keys.sorted() {
            text += " \(key)=\(quoted(metadata[key]!.description))"
        }
        return text.split(separator: "\n", omittingEmptySubsequences: false)
            .enumerated()
            .map { $0.offset == 0 ? String($0.element) : prefix + $0.element }
            .joined(separator: "\n") + "\n"
    }

    /// Whether stderr is the stream journald connected: `$JOURNAL_STREAM` is
    /// `<device>:<inode>` of it, and only a match with `fstat(2)` of fd 2
    /// counts (a child whose stderr was redirected inherits the variable).
    public static func stderrIsJournal(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        isJournal(fd: STDERR_FILENO, journalStream: environment["JOURNAL_STREAM"])
    }

    /// Whether `fd` is the stream `journalStream` (`<device>:<inode>`) names.
    public static func isJournal(fd: Int32, journalStream: String?) -> Bool {
        guard let journalStream else { return false }
        let parts = journalStream.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    private static func quoted(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\t" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Lines from many threads must not interleave: one writer at a time, and
    /// each line in as few `write(2)` calls as the kernel allows.
    private static let writeLock = Locked(())

    @Sendable private static func writeToStandardError(_ line: String) {
        var bytes = Array(line.utf8)
        writeLock.withLock { _ in
            bytes.withUnsafeMutableBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return
                    }
                    offset += written
                }
            }
        }
    }
}
