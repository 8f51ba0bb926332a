import Foundation
import Logging
import Locking
import XCTest
@testable import SystemdNotify

final class JournalLogHandlerTests: XCTestCase {
    func testLevelPrefixes() {
        let expected: [(Logger.Level, String)] = [
            (.critical, "<3>"), (.error, "<3>"), (.warning, "<4>"), (.notice, "<5>"),
            (.info, "<6>"), (.debug, "<7>"), (.trace, "<7>"),
        ]
        for (level, prefix) in expected {
            XCTAssertEqual(JournalLogHandler.prefix(for: level), prefix, "\(level)")
        }
    }

    func testLineFormat() {
        XCTAssertEqual(JournalLogHandler.line(level: .warning, label: "acerelay", message: "engine slow",
                                              metadata: ["relay.worker": "1", "engine": "http://127.0.0.1:6878"]),
                       "<4>acerelay: engine slow engine=http://127.0.0.1:6878 relay.worker=1\n")
        XCTAssertEqual(JournalLogHandler.line(level: .info, label: "a", message: "m", metadata: ["reason": "no route", "empty": ""]),
                       "<6>a: m empty=\"\" reason=\"no route\"\n")
        // Every line of a multi-line message keeps the priority.
        XCTAssertEqual(JournalLogHandler.line(level: .error, label: "a", message: "one\ntwo", metadata: [:]), "<3>a: one\n<3>two\n")
    }

    func testLoggerThroughHandlerHasNoTimestamp() {
        let lines = Locked<[String]>([])
        var handler = JournalLogHandler(label: "acerelay", output: { line in lines.withLock { $0.append(line) } })
        handler.logLevel = .debug
        handler[metadataKey: "relay.worker"] = "0"
        let logger = Logger(label: "acerelay") { _ in handler }
        logger.notice("control API listening", metadata: ["control.address": "127.0.0.1:8000"])
        logger.trace("not shown")
        logger.debug("shown")
        XCTAssertEqual(lines.withLock { $0 }, [
            "<5>acerelay: control API listening control.address=127.0.0.1:8000 relay.worker=0\n",
            "<7>acerelay: shown relay.worker=0\n",
        ])
    }

    func testJournalStreamMustMatchStderr() throws {
        // A real file stands in for the journal's stream: its device and inode are the "journal".
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString)").path
        let fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer {
            close(fd)
            unlink(path)
        }
        var info = stat()
        XCTAssertEqual(fstat(fd, &info), 0)
        let stream = "\(info.st_dev):\(info.st_ino)"
        XCTAssertTrue(JournalLogHandler.isJournal(fd: fd, journalStream: stream))
        XCTAssertFalse(JournalLogHandler.isJournal(fd: fd, journalStream: "\(info.st_dev):\(info.st_ino + 1)"))
        XCTAssertFalse(JournalLogHandler.isJournal(fd: fd, journalStream: nil))
        XCTAssertFalse(JournalLogHandler.isJournal(fd: fd, journalStream: "garbage"))
        // The test's own stderr is not that file.
        XCTAssertFalse(JournalLogHandler.stderrIsJournal(environment: ["JOURNAL_STREAM": stream]))
        XCTAssertFalse(JournalLogHandler.stderrIsJournal(environment: [:]))
        // With stderr pointed at that file for a moment, it is.
        let savedStderr = dup(STDERR_FILENO)
        XCTAssertGreaterThanOrEqual(savedStderr, 0)
        dup2(fd, STDERR_FILENO)
        let matched = JournalLogHandler.stderrIsJournal(environment: ["JOURNAL_STREAM": stream])
        dup2(savedStderr, STDERR_FILENO)
        close(savedStderr)
        XCTAssertTrue(matched)
    }
}
