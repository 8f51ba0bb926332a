import Clocks
import Foundation
import Logging
import Locking
import Synchronization

/// Logs a condition that persists — accepts failing for want of descriptors, an
/// engine not answering, stat polls failing — when it begins, once per summary
/// interval while it lasts, and when it ends, instead of once per retry.
///
/// Callers report every failed attempt with `occurred` and every success with
/// `cleared`; both are cheap when nothing is logged (the detail is an autoclosure
/// evaluated only for a line that is written). Summaries are written by the next
/// occurrence after the interval, so the type needs no timer of its own; a
/// condition that stops being tried stays silent until it is tried again.
///
/// A condition that flaps (descriptors at their limit: one accept works, the next
/// fails) is one episode: a success only ends it once no failure came for
/// `settleInterval`, and the end is written by the first report after that.
/// `occurrences` counts every failed attempt ever, for a metric.
public final class PersistentConditionLog: Sendable {
    private enum State {
        case clear
        /// Failing since `since`; `count` attempts in all, `sinceLine` since the last line, written at `lastLine`.
        case active(since: Date, count: UInt64, sinceLine: UInt64, lastLine: Date)
        /// A success came at `clearedAt`; the episode ends once `settleInterval` passes without a failure.
        case settling(since: Date, count: UInt64, sinceLine: UInt64, lastLine: Date, clearedAt: Date)
    }

    /// What to write, decided under the lock and logged outside it.
    private enum Line {
        case began
        case continuing(count: UInt64, sinceLine: UInt64, duration: TimeInterval)
        case ended(count: UInt64, duration: TimeInterval)
    }

    /// Names the condition in every line, e.g. "accept failing".
    public let name: String
    private let summaryInterval: TimeInterval
    private let settleInterval: TimeInterval
    private let clock: any WallClock
    private let logger: Logger
    private let level: Logger.Level
    private let state = Locked<State>(.clear)
    private let total = Atomic<UInt64>(0)

    /// - Parameters:
    ///   - summaryInterval: at most one "still failing" line per this many seconds.
    ///   - settleInterval: how long successes must go without a failure for the episode to end.
    ///   - level: for the begin and summary lines; the end line is `notice`.
    public init(name: String, summaryInterval: TimeInterval = 60, settleInterval: TimeInterval = 2, level: Logger.Level = .warning,
                clock: any WallClock = SystemClock(), logger: Logger) {
        self.name = name
        self.summaryInterval = summaryInterval
        self.settleInterval = settleInterval
        self.level = level
        self.clock = clock
        self.logger = logger
    }

    /// Failed attempts ever reported.
    public var occurrences: UInt64 { total.load(ordering: .relaxed) }

    /// Whether the condition holds: failing, or cleared too recently to call it over.
    public var isActive: Bool {
        state.withLock { if case .clear = $0 { return false } else { return true } }
    }

    /// Reports one failed attempt; logs only when the condition begins or a summary is due.
    public func occurred(_ detail: @autoclosure () -> String, metadata: Logger.Metadata = [:]) {
        total.add(1, ordering: .relaxed)
        let now = clock.now
        let lines: [Line] = state.withLock { state in
            var ended: [Line] = []
            var episode: (since: Date, count: UInt64, sinceLine: UInt64, lastLine: Date)?
            switch state {
            case .clear:
                break
            case let .active(since, count, sinceLine, lastLine):
                episode = (since, count, sinceLine, lastLine)
            case let .settling(since, count, sinceLine, lastLine, clearedAt):
                if now.timeIntervalSince(clearedAt) < settleInterval {
                    episode = (since, count, sinceLine, lastLine)
                } else {
                    ended = [.ended(count: count, duration: clearedAt.timeIntervalSince(since))]
                }
            }
            guard let (since, count, sinceLine, lastLine) = episode else {
                state = .active(since: now, count: 1, sinceLine: 0, lastLine: now)
                return ended + [.began]
            }
            if now.timeIntervalSince(lastLine) >= summaryInterval {
                state = .active(since: since, count: count + 1, sinceLine: 0, lastLine: now)
                return [.continuing(count: count + 1, sinceLine: sinceLine + 1, duration: now.timeIntervalSince(since))]
            }
            state = .active(since: since, count: count + 1, sinceLine: sinceLine + 1, lastLine: lastLine)
            return []
        }
        guard !lines.isEmpty else { return }
        var metadata = metadata
        for line in lines {
            if case .ended = line { write(line, metadata: metadata); continue }
            metadata["condition.detail"] = "\(detail())"
            write(line, metadata: metadata)
        }
    }

    /// Reports a success; logs the end once successes have lasted `settleInterval`.
    public func cleared(metadata: Logger.Metadata = [:]) {
        let now = clock.now
        let line: Line? = state.withLock { state in
            switch state {
            case .clear:
                return nil
            case let .active(since, count, sinceLine, lastLine):
                state = .settling(since: since, count: count, sinceLine: sinceLine, lastLine: lastLine, clearedAt: now)
                return nil
            case let .settling(since, count, _, _, clearedAt):
                guard now.timeIntervalSince(clearedAt) >= settleInterval else { return nil }
                state = .clear
                return .ended(count: count, duration: clearedAt.timeIntervalSince(since))
            }
        }
        if let line { write(line, metadata: metadata) }
    }

    private func write(_ line: Line, metadata: Logger.Metadata) {
        var metadata = metadata
        metadata["condition.name"] = "\(name)"
        switch line {
        case .began:
            logger.log(level: level, "\(name): began", metadata: metadata)
        case let .continuing(count, sinceLine, duration):
            metadata["condition.occurrences"] = "\(count)"
            metadata["condition.duration_s"] = "\(Int(duration))"
            logger.log(level: level, "\(name): still so, \(sinceLine) times since the last line", metadata: metadata)
        case let .ended(count, duration):
            metadata["condition.occurrences"] = "\(count)"
            metadata["condition.duration_s"] = "\(Int(duration))"
            logger.notice("\(name): ended after \(Int(duration)) s and \(count) failed attempts", metadata: metadata)
        }
    }
}
