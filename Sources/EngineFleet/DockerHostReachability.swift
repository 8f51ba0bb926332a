import Foundation

/// Whether one Docker host answers, as the fleet last found it, and when to
/// tell the log about it.
///
/// A host that stops answering is a condition, not an event per call: the
/// change is reported once when it starts and once when it ends, with a
/// summary while it lasts, and every failed call is counted instead.
struct DockerHostReachability: Sendable, Equatable {
    enum Condition: Sendable, Equatable {
        /// Not asked yet (just after start-up): taken as answering, so provisioning may try it.
        case unknown
        case up
        /// Not answering since `since`; `failures` calls failed since then, the last summary was logged at `summarized`.
        case down(since: Date, failures: Int, summarized: Date)
    }

    /// What a recorded call changed, for the log.
    enum Change: Sendable, Equatable {
        case none
        /// It stopped answering.
        case wentDown
        /// Still down, and a summary is due: failed calls and seconds since it went down.
        case stillDown(failures: Int, seconds: TimeInterval)
        /// It answers again after `seconds` down and `failures` failed calls.
        case cameBack(failures: Int, seconds: TimeInterval)
    }

    private(set) var condition = Condition.unknown
    /// The last failure's one-line description, kept after the host comes back.
    private(set) var lastError: String?
    private(set) var lastChecked: Date?
    /// Failed calls since start-up, for `acerelay_docker_errors_total`.
    private(set) var errors: UInt64 = 0
    /// How often a lasting outage is summarized in the log.
    let summaryInterval: TimeInterval

    init(summaryInterval: TimeInterval) {
        self.summaryInterval = summaryInterval
    }

    /// False only once a call failed and none succeeded since.
    var isReachable: Bool {
        if case .down = condition { return false }
        return true
    }

    mutating func recordSuccess(at now: Date) -> Change {
        lastChecked = now
        defer { condition = .up }
        guard case .down(let since, let failures, _) = condition else { return .none }
        return .cameBack(failures: failures, seconds: now.timeIntervalSince(since))
    }

    mutating func recordFailure(_ error: String, at now: Date) -> Change {
        lastChecked = now
        lastError = error
        errors += 1
        switch condition {
        case .unknown, .up:
            condition = .down(since: now, failures: 1, summarized: now)
            return .wentDown
        case .down(let since, let failures, let summarized):
            let due = now.timeIntervalSince(summarized) >= summaryInterval
            condition = .down(since: since, failures: failures + 1, summarized: due ? now : summarized)
            return due ? .stillDown(failures: failures + 1, seconds: now.timeIntervalSince(since)) : .none
        }
    }
}
