import Clocks
import DockerEngine
import Foundation
import Logging
import Locking
import Testing
@testable import EngineFleet

/// Several Docker hosts without a daemon: which host a new engine goes to, how
/// an outage is logged and reported, where an engine on a TCP host is reached.
@Suite struct DockerHostPoolTests {
    static let down = DockerError.daemonUnreachable(host: .tcp(host: "10.0.0.2", port: 2375), reason: "connection refused")

    @Test func newEnginesGoToTheAnsweringHostWithFewestEnginesCountingThoseOnTheirWay() throws {
        let pool = DockerHostPool(clients: [Self.client("10.0.0.1"), Self.client("10.0.0.2")], clock: ManualClock(), logger: Self.quiet)
        let (a, b) = (pool.members[0], pool.members[1])
        // Two provisions at once: the second must not pile onto the host the first took.
        let first = try #require(pool.claim(engines: [:]))
        let second = try #require(pool.claim(engines: [:]))
        #expect(first.name == a.name)
        #expect(second.name == b.name)
        pool.finished(first)
        pool.finished(second)
        #expect(pool.claim(engines: [a.name: 2, b.name: 1])?.name == b.name)
        pool.finished(b)
        pool.recordFailure(b, Self.down)
        #expect(pool.claim(engines: [a.name: 5, b.name: 0])?.name == a.name, "a host that does not answer is skipped")
        pool.finished(a)
        #expect(pool.claim(engines: [:], excluding: [a.name]) == nil)
        pool.recordFailure(a, Self.down)
        #expect(pool.claim(engines: [:]) == nil)
        pool.recordSuccess(b)
        #expect(pool.claim(engines: [a.name: 0, b.name: 9])?.name == b.name, "back once it answers")
    }

    @Test func anOutageIsLoggedWhenItStartsAndWhenItEndsWithASummaryEveryFiveMinutesBetween() {
        let clock = ManualClock()
        let lines = RecordedLines()
        let pool = DockerHostPool(clients: [Self.client("10.0.0.2")], clock: clock, logger: lines.logger)
        let host = pool.members[0]
        pool.recordSuccess(host)
        // Ten minutes of failures, one every 10 s (the reconciliation interval).
        for _ in 0...60 {
            pool.recordFailure(host, Self.down)
            clock.advance(10)
        }
        pool.recordSuccess(host)
        pool.recordSuccess(host)
        #expect(lines.messages(.error) == ["Docker host unreachable: no new engines go there, its running engines keep serving"])
        #expect(lines.messages(.warning) == ["Docker host still unreachable", "Docker host still unreachable"], "at 300 s and 600 s")
        #expect(lines.messages(.notice) == ["Docker host reachable again"])
        #expect(lines.metadata(.notice, "docker.failures") == ["61"])
        let status = pool.status(engines: [host.name: 3])
        #expect(status == [DockerHostStatus(name: "tcp://10.0.0.2:2375", reachable: true, engines: 3, lastError: Self.down.description,
                                            lastChecked: clock.now, errors: 61)])
    }

    @Test func anEngineOnATCPHostIsReachedAtThatHostsAddress() {
        let provisioner = Self.provisioner([Self.client("10.1.2.3")])
        let remote = provisioner.makeEngine(id: "c1", name: "acestream-19000", hostPort: 19000, apiPort: 19001, labels: [:],
                                            on: .tcp(host: "10.1.2.3", port: 2375), now: Date())
        #expect(remote.endpoint.baseURL == "http://10.1.2.3:19000")
        #expect(remote.host == "10.1.2.3")
        #expect(remote.dockerHost == "tcp://10.1.2.3:2375")
        let v6 = provisioner.makeEngine(id: "c2", name: "acestream-19002", hostPort: 19002, apiPort: nil, labels: [:],
                                        on: .tcp(host: "fd00::2", port: 2375), now: Date())
        #expect(v6.endpoint.baseURL == "http://[fd00::2]:19002")
        let local = provisioner.makeEngine(id: "c3", name: "acestream-19004", hostPort: 19004, apiPort: nil, labels: [:],
                                           on: .unixSocket(path: "/run/docker.sock"), now: Date())
        #expect(local.endpoint.baseURL == "http://127.0.0.1:19004", "a local socket's engines are on this machine")
        #expect(local.dockerHost == "unix:///run/docker.sock")
    }

    @Test func noHostAnsweringBlocksProvisioningWithTheOrchestratorsWaitFields() async throws {
        let socket = "/tmp/acerelay-no-daemon-\(UUID().uuidString.prefix(8)).sock"
        let provisioner = Self.provisioner([DockerClient(host: .unixSocket(path: socket), logger: Self.quiet)])
        #expect(provisioner.status().canProvision, "not known to be down before the first call")
        try await provisioner.reconcile()
        let status = provisioner.status()
        #expect(!status.canProvision)
        let blocked = try #require(status.blocked)
        #expect(blocked.code == "general_error")
        #expect(blocked.shouldWait && blocked.canRetry)
        #expect(blocked.message.contains("unix://\(socket)"), "\(blocked.message)")
        #expect(provisioner.dockerHosts().map(\.reachable) == [false])
        let refused = await #expect(throws: ProvisioningError.self) { try await provisioner.provision() }
        #expect(refused?.code == "general_error")
        #expect(provisioner.status().breaker == .closed, "an unreachable daemon is reported, not counted by the breaker")
    }

    @Test func oneHostOfTwoDownLeavesProvisioningOpen() async throws {
        let provisioner = Self.provisioner([DockerClient(host: .unixSocket(path: "/tmp/acerelay-no-daemon-a.sock"), logger: Self.quiet),
                                            Self.client("10.0.0.9")])
        provisioner.hosts.recordFailure(provisioner.hosts.members[0], Self.down)
        #expect(provisioner.status().canProvision)
        #expect(provisioner.dockerHosts().map(\.reachable) == [false, true])
    }

    @Test func aDownVPNIsTheReasonGivenBeforeNoDockerHostAnswering() async throws {
        let provisioner = Self.provisioner([Self.missingSocket()])
        let vpnDown = Locked(true)
        provisioner.blockers.add("vpn") {
            vpnDown.withLock { $0 } ? ProvisioningError(code: "vpn_disconnected", message: "the VPN is down", recoveryETASeconds: 5,
                                                        canRetry: true, shouldWait: true) : nil
        }
        provisioner.hosts.recordFailure(provisioner.hosts.members[0], Self.down)
        #expect(provisioner.status().blocked?.code == "vpn_disconnected")
        #expect(provisioner.demandHook()()?.code == "vpn_disconnected")
        let refused = await #expect(throws: ProvisioningError.self) { try await provisioner.provision() }
        #expect(refused?.code == "vpn_disconnected")
        vpnDown.withLock { $0 = false }
        #expect(provisioner.status().blocked?.code == "general_error", "then no Docker host answering")
        #expect(provisioner.demandHook()()?.code == "general_error")
        #expect(!provisioner.status().canProvision)
    }

    @Test func theForwardedEngineGoesOnlyToTheFirstHostListed() async throws {
        let provisioner = Self.provisioner([Self.missingSocket(), Self.missingSocket()])
        let (first, second) = (provisioner.hosts.members[0], provisioner.hosts.members[1])
        provisioner.hosts.recordFailure(first, Self.down)
        let refused = await #expect(throws: ProvisioningError.self) { try await provisioner.provision(p2pPort: 40_123) }
        #expect(refused?.code == "general_error")
        #expect(refused?.message.contains(first.name) == true, "\(refused?.message ?? "")")
        #expect(provisioner.dockerHosts()[1].lastChecked == nil, "the second host was not asked")
        // Any other engine may go to the second host: it is asked (and found missing too).
        _ = await #expect(throws: ProvisioningError.self) { try await provisioner.provision() }
        #expect(provisioner.dockerHosts().first { $0.name == second.name }?.lastChecked != nil)
    }

    // MARK: Helpers

    /// A client of a unix socket nothing listens on: every call fails at once as unreachable.
    static func missingSocket() -> DockerClient {
        DockerClient(host: .unixSocket(path: "/tmp/acerelay-no-daemon-\(UUID().uuidString.prefix(8)).sock"), logger: quiet)
    }

    static let quiet = Logger(label: "docker-host-pool-test") { _ in SwiftLogNoOpLogHandler() }

    /// A client of a TCP daemon that is never called.
    static func client(_ address: String) -> DockerClient { DockerClient(host: .tcp(host: address, port: 2375), logger: quiet) }

    static func provisioner(_ clients: [DockerClient]) -> EngineProvisioner {
        var configuration = FleetConfiguration()
        configuration.minReplicas = 0
        configuration.minFreeReplicas = 0
        let fleet = EngineFleet(maxStreamsPerEngine: 3, startupTimeout: 5, failureThreshold: 3, logger: quiet)
        return EngineProvisioner(configuration: configuration, dockerHosts: clients, fleet: fleet, store: nil, logger: quiet)
    }
}

/// Keeps every log line a logger writes, for tests that count them.
final class RecordedLines: Sendable {
    private let lines = Locked<[(level: Logger.Level, message: String, metadata: Logger.Metadata)]>([])

    var logger: Logger {
        var logger = Logger(label: "recorded") { _ in Handler(lines: self) }
        logger.logLevel = .trace
        return logger
    }

    func messages(_ level: Logger.Level) -> [String] { lines.withLock { $0.filter { $0.level == level }.map(\.message) } }

    func metadata(_ level: Logger.Level, _ key: String) -> [String] {
        lines.withLock { $0.filter { $0.level == level }.compactMap { $0.metadata[key].map { "\($0)" } } }
    }

    fileprivate func append(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata) {
        lines.withLock { $0.append((level, message, metadata)) }
    }

    private struct Handler: LogHandler {
        let lines: RecordedLines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            lines.append(event.level, event.message.description, metadata.merging(event.metadata ?? [:]) { _, new in new })
        }
    }
}
