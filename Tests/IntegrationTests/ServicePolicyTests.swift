import Foundation
import Logging
import ServiceLifecycle
import Locking
import Testing
@testable import AceRelayApp

/// The composition's shutdown policies, on a service group in process (no
/// signals): control-plane services that fail never end the group the relay
/// lives in, except the control API failing to open its port.
@Suite struct ServicePolicyTests {
    @Test func aControlAPIThatFailsAfterStartLeavesTheGroupRunning() async throws {
        let progress = GroupProgress()
        let ticks = Counter()
        let group = Self.group([
            ServicePolicy.controlAPI(ControlAPIService(application: FailingService(progress: progress, becomesReady: true),
                                                       address: "127.0.0.1:8000", progress: progress, logger: Self.logger)),
            ServicePolicy.auxiliary(PeriodicService(description: "ticks", interval: 0.02, logger: Self.logger) { ticks.add() }),
            ServicePolicy.shutdownWatch(ShutdownWatchService(progress: progress)),
        ])
        let run = Task { try await group.run() }
        #expect(await Self.until(30) { progress.reached(.ready) })
        // The API is gone; the group (and so the relay) carries on.
        let after = ticks.value
        #expect(await Self.until(30) { ticks.value >= after + 3 })
        #expect(!progress.reached(.stopping))
        await group.triggerGracefulShutdown()
        try await run.value
        #expect(progress.reached(.stopping))
    }

    @Test func aControlAPIThatCannotStartStopsTheGroupWithItsAddress() async throws {
        let progress = GroupProgress()
        let group = Self.group([
            ServicePolicy.controlAPI(ControlAPIService(application: FailingService(progress: progress, becomesReady: false),
                                                       address: "127.0.0.1:8000", progress: progress, logger: Self.logger)),
            ServicePolicy.auxiliary(PeriodicService(description: "ticks", interval: 0.02, logger: Self.logger) {}),
            ServicePolicy.shutdownWatch(ShutdownWatchService(progress: progress)),
        ])
        do {
            try await group.run()
            Issue.record("the group kept running without its control API")
        } catch let failure as StartFailure {
            #expect(failure.description.contains("127.0.0.1:8000"))
            #expect(failure.description.contains("--api-listen"))
            #expect(!failure.description.contains("\n"))
        }
        #expect(progress.reached(.stopping))
    }

    @Test func aPeriodicServiceThatThrowsRunsAgainAtItsInterval() async throws {
        let progress = GroupProgress()
        let attempts = Counter()
        let group = Self.group([
            ServicePolicy.auxiliary(PeriodicService(description: "always failing", interval: 0.02, logger: Self.logger) {
                attempts.add()
                throw TestError("engine unreachable")
            }),
            ServicePolicy.shutdownWatch(ShutdownWatchService(progress: progress)),
        ])
        let run = Task { try await group.run() }
        #expect(await Self.until(30) { attempts.value >= 3 })
        await group.triggerGracefulShutdown()
        try await run.value
    }

    @Test func groupProgressWaitsForTheStageItNamesOrItsDeadline() {
        let progress = GroupProgress()
        #expect(progress.wait(for: .ready, until: .now() + 0.05) == .starting)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { progress.advance(to: .stopping) }
        #expect(progress.wait(for: .ready) == .stopping)
        progress.advance(to: .ready)
        #expect(progress.wait(for: .stopping) == .stopping, "stages only move forward")
    }

    // MARK: Helpers

    static let logger: Logger = {
        var logger = Logger(label: "acerelay-test") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .critical
        return logger
    }()

    static func group(_ services: [ServiceGroupConfiguration.ServiceConfiguration]) -> ServiceGroup {
        var configuration = ServiceGroupConfiguration(services: services, logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(3)
        return ServiceGroup(configuration: configuration)
    }

    /// Waits for `condition`; the limit is generous because the process tests
    /// that run alongside block the few cooperative threads while they wait.
    static func until(_ timeout: Double, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }
}

/// Stands in for the HTTP server: says it is listening (or not), then fails.
private struct FailingService: Service {
    let progress: GroupProgress
    let becomesReady: Bool

    func run() async throws {
        if becomesReady { progress.advance(to: .ready) }
        throw TestError("the socket went away")
    }
}

private final class Counter: Sendable {
    private let count = Locked(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
