import Clocks
import Foundation
import Logging
import PersistentConditions
import Locking
import Testing

/// Keeps every line logged through it, for asserting what an operator would read.
final class CapturedLines: Sendable {
    let lines = Locked<[(level: Logger.Level, message: String, metadata: Logger.Metadata)]>([])

    var logger: Logger {
        Logger(label: "test") { _ in Handler(sink: self) }
    }

    var messages: [String] { lines.withLock { $0.map(\.message) } }

    struct Handler: LogHandler {
        let sink: CapturedLines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?,
                 source: String, file: String, function: String, line: UInt) {
            sink.lines.withLock { $0.append((level, message.description, metadata ?? [:])) }
        }
    }
}

@Suite struct PersistentConditionLogTests {
    @Test func aConditionThatPersistsIsLoggedWhenItBeginsOncePerIntervalAndWhenItEnds() {
        let clock = ManualClock()
        let captured = CapturedLines()
        let condition = PersistentConditionLog(name: "accept failing", summaryInterval: 60, clock: clock, logger: captured.logger)
        // 4 failures a second for 150 s (steps a Double holds exactly, so the minute falls on a failure).
        var details = 0
        for _ in 0..<600 {
            condition.occurred({ details += 1; return "EMFILE" }())
            clock.advance(0.25)
        }
        #expect(condition.isActive)
        #expect(condition.occurrences == 600)
        // Begun at 0 s, summaries at 60 and 120 s: three lines for 600 failures.
        #expect(captured.messages == ["accept failing: began",
                                      "accept failing: still so, 240 times since the last line",
                                      "accept failing: still so, 240 times since the last line"])
        #expect(details == 3, "the detail is built only for lines written")
        let summary = captured.lines.withLock { $0[1] }
        #expect(summary.level == .warning)
        #expect(summary.metadata["condition.occurrences"] == "241")
        #expect(summary.metadata["condition.detail"] == "EMFILE")

        // One success does not end it; successes for the settle interval (2 s) do.
        condition.cleared()
        #expect(condition.isActive)
        #expect(captured.messages.count == 3)
        clock.advance(2)
        condition.cleared()
        #expect(!condition.isActive)
        #expect(captured.messages.last == "accept failing: ended after 150 s and 600 failed attempts")
        #expect(captured.lines.withLock { $0.last?.level } == .notice)
        // Successes while clear write nothing; the counter keeps counting across episodes.
        condition.cleared()
        #expect(captured.messages.count == 4)
        condition.occurred("EMFILE")
        #expect(captured.messages.last == "accept failing: began")
        #expect(condition.occurrences == 601)
    }

    @Test func aSingleFailureBeginsAndEndsWithoutASummary() {
        let clock = ManualClock()
        let captured = CapturedLines()
        let condition = PersistentConditionLog(name: "engine e1 not answering", summaryInterval: 30, level: .error,
                                               clock: clock, logger: captured.logger)
        condition.occurred("timeout", metadata: ["fleet.engine": "e1"])
        clock.advance(10)
        condition.cleared(metadata: ["fleet.engine": "e1"])
        clock.advance(5)
        condition.cleared(metadata: ["fleet.engine": "e1"])
        #expect(captured.messages == ["engine e1 not answering: began",
                                      "engine e1 not answering: ended after 10 s and 1 failed attempts"])
        let began = captured.lines.withLock { $0[0] }
        #expect(began.level == .error)
        #expect(began.metadata["fleet.engine"] == "e1")
        #expect(began.metadata["condition.name"] == "engine e1 not answering")
    }

    @Test func aConditionThatFlapsIsOneEpisodeUntilItStaysClear() {
        let clock = ManualClock()
        let captured = CapturedLines()
        let condition = PersistentConditionLog(name: "accept failing", settleInterval: 2, clock: clock, logger: captured.logger)
        // Descriptors at their limit: every other accept works, for 10 s.
        for _ in 0..<50 {
            condition.occurred("EMFILE")
            clock.advance(0.125)
            condition.cleared()
            clock.advance(0.125)
        }
        #expect(captured.messages == ["accept failing: began"])
        // Clear for 2 s, then the next report writes the end (dated at the first success).
        clock.advance(2)
        condition.cleared()
        #expect(captured.messages.last == "accept failing: ended after 12 s and 50 failed attempts")
        // A failure after the settle interval is a new episode; one during it is the same one.
        condition.occurred("EMFILE")
        condition.cleared()
        clock.advance(3)
        condition.occurred("EMFILE")
        #expect(captured.messages.suffix(3) == ["accept failing: began", "accept failing: ended after 0 s and 1 failed attempts",
                                               "accept failing: began"])
    }
}
