import Clocks
import DockerEngine
import Foundation
import Logging
import Locking

/// One Docker host as `/orchestrator/status` reports it.
public struct DockerHostStatus: Sendable, Equatable {
    /// The host's `DOCKER_HOST` spelling, also the value of its engines' `acerelay.docker_host` label.
    public var name: String
    /// False once a call failed and none succeeded since.
    public var reachable: Bool
    /// Managed engines the fleet knows on this host.
    public var engines: Int
    /// The last failed call's reason, kept after the host answers again.
    public var lastError: String?
    /// When a call to it last ended, either way; nil before the first.
    public var lastChecked: Date?
    /// Failed calls since start-up.
    public var errors: UInt64
}

/// The Docker hosts engines are provisioned on (`DOCKER_HOSTS`, or the one
/// `DOCKER_HOST`), whether each answers, and which one the next engine goes to.
///
/// New engines go to the answering host with the fewest engines, counting those
/// being created, so a burst of provisions spreads instead of piling onto the
/// host that was emptiest when it began. A host that does not answer is skipped
/// until a call to it succeeds again (the reconciler asks every host each round).
final class DockerHostPool: Sendable {
    /// One host: its client and the name its containers are labelled with.
    struct Member: Sendable {
        let name: String
        let client: DockerClient
    }

    private struct State {
        var reachability: [String: DockerHostReachability]
        /// Engines being created on each host, not yet registered with the fleet.
        var pending: [String: Int] = [:]
    }

    let members: [Member]
    private let state: Locked<State>
    private let clock: any WallClock
    private let logger: Logger

    /// How often a lasting outage is summarized in the log.
    static let summaryInterval: TimeInterval = 300

    init(clients: [DockerClient], clock: any WallClock, logger: Logger, summaryInterval: TimeInterval = DockerHostPool.summaryInterval) {
        precondition(!clients.isEmpty, "a provisioner needs at least one Docker host")
        members = clients.map { Member(name: $0.host.description, client: $0) }
        state = Locked(State(reachability: Dictionary(members.map { ($0.name, DockerHostReachability(summaryInterval: summaryInterval)) },
                                                     uniquingKeysWith: { first, _ in first })))
        self.clock = clock
        self.logger = logger
    }

    func member(named name: String?) -> Member? { members.first { $0.name == name } }

    /// Whether `name` answered the last call made to it (true before the first).
    func isReachable(_ name: String) -> Bool {
        state.withLock { $0.reachability[name]?.isReachable ?? false }
    }

    /// The hosts that do not answer, in configuration order.
    var unreachable: [Member] {
        state.withLock { state in members.filter { state.reachability[$0.name]?.isReachable == false } }
    }

    /// Takes the answering host with the fewest engines (`engines` per host name,
    /// plus those being created there) for one new engine; nil when none answers.
    /// `excluding` skips hosts this attempt already failed on. Give it back with `finished`.
    func claim(engines: [String: Int], excluding: Set<String> = []) -> Member? {
        state.withLock { state in
            let candidates = members.filter { state.reachability[$0.name]?.isReachable == true && !excluding.contains($0.name) }
            // Configuration order breaks ties, so one host alone fills first.
            guard let chosen = candidates.enumerated().min(by: { a, b in
                let loadA = engines[a.element.name, default: 0] + state.pending[a.element.name, default: 0]
                let loadB = engines[b.element.name, default: 0] + state.pending[b.element.name, default: 0]
                return loadA != loadB ? loadA < loadB : a.offset < b.offset
            })?.element else { return nil }
            state.pending[chosen.name, default: 0] += 1
            return chosen
        }
    }

    /// The engine claimed on `member` is registered or failed: it no longer counts as being created.
    func finished(_ member: Member) {
        state.withLock { $0.pending[member.name, default: 1] -= 1 }
    }

    /// Records that `member` answered a call.
    func recordSuccess(_ member: Member) {
        let now = clock.now
        let change = state.withLock { $0.reachability[member.name]?.recordSuccess(at: now) } ?? .none
        report(change, member: member, error: nil)
    }

    /// Records that a call to `member` failed; a task cancelled by shutdown is not the host's fault.
    func recordFailure(_ member: Member, _ error: DockerError) {
        if case .cancelled = error { return }
        let now = clock.now
        let change = state.withLock { $0.reachability[member.name]?.recordFailure(error.description, at: now) } ?? .none
        report(change, member: member, error: error)
    }

    /// Every host's state; `engines` per host name.
    func status(engines: [String: Int]) -> [DockerHostStatus] {
        state.withLock { state in
            members.map { member in
                let reachability = state.reachability[member.name] ?? DockerHostReachability(summaryInterval: Self.summaryInterval)
                return DockerHostStatus(name: member.name, reachable: reachability.isReachable, engines: engines[member.name, default: 0],
                                        lastError: reachability.lastError, lastChecked: reachability.lastChecked, errors: reachability.errors)
            }
        }
    }

    /// One line when a host goes down and one when it comes back; in between a
    /// summary every `summaryInterval`, never a line per failed call.
    private func report(_ change: DockerHostReachability.Change, member: Member, error: DockerError?) {
        let host: Logger.MetadataValue = "\(member.name)"
        switch change {
        case .none:
            return
        case .wentDown:
            logger.error("Docker host unreachable: no new engines go there, its running engines keep serving",
                         metadata: ["docker.host": host, "docker.reason": "\(error?.description ?? "unknown")"])
        case .stillDown(let failures, let seconds):
            logger.warning("Docker host still unreachable",
                           metadata: ["docker.host": host, "docker.down_s": "\(Int(seconds))", "docker.failures": "\(failures)",
                                      "docker.reason": "\(error?.description ?? "unknown")"])
        case .cameBack(let failures, let seconds):
            logger.notice("Docker host reachable again",
                          metadata: ["docker.host": host, "docker.down_s": "\(Int(seconds))", "docker.failures": "\(failures)"])
        }
    }
}
