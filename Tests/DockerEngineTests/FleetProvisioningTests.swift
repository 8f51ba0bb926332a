import DockerEngine
import EngineFleet
import EngineSimulator
import Foundation
import Logging
import RelayCore
import Store
import Locking
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The fleet end to end: real podman, engine containers made from the project's
/// engine simulator (installed as `python`, so the real `python main.py <flags>`
/// command runs it), the relay in front.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct FleetProvisioningTests {
    static let logger: Logger = {
        var logger = Logger(label: "fleet-test") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = ProcessInfo.processInfo.environment["ACERELAY_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return logger
    }()

    /// One fleet on one podman service, with health probes and waiters driven in the background.
    final class Rig: @unchecked Sendable {
        let podman: PodmanService
        let fleet: EngineFleet
        let provisioner: EngineProvisioner
        let monitor: HealthMonitor
        let configuration: FleetConfiguration
        private var loop: Task<Void, Never>?

        init(podman: PodmanService, image: String, configure: (inout FleetConfiguration) -> Void) throws {
            var configuration = FleetConfiguration()
            configuration.image = image
            configuration.networkMode = "host"
            configuration.containerLabel = podman.labels.first!
            configuration.portRange = try Rig.freePortRange(count: 12)
            configuration.minReplicas = 0
            configuration.minFreeReplicas = 0
            configuration.healthCheckTimeout = 1
            configuration.healthFailureThreshold = 2
            configure(&configuration)
            self.configuration = configuration
            self.podman = podman
            fleet = EngineFleet(maxStreamsPerEngine: configuration.maxStreamsPerEngine, startupTimeout: configuration.startupTimeout,
                                failureThreshold: configuration.healthFailureThreshold, logger: FleetProvisioningTests.logger)
            provisioner = EngineProvisioner(configuration: configuration, docker: podman.client, fleet: fleet, store: nil,
                                            logger: FleetProvisioningTests.logger)
            fleet.onDemand(provisioner.demandHook())
            monitor = HealthMonitor(fleet: fleet, store: nil, probe: EngineProbe(timeout: 1), logger: FleetProvisioningTests.logger)
        }

        /// Probes and serves waiting requests every 300 ms until `stop()`.
        func startBackground() {
            let (monitor, fleet) = (monitor, fleet)
            loop = Task {
                while !Task.isCancelled {
                    await monitor.checkAll()
                    fleet.serveWaiters()
                    try? await Task.sleep(for: .milliseconds(300))
                }
            }
        }

        func stop() { loop?.cancel() }

        func containers() async throws -> [ContainerSummary] { try await podman.client.listContainers(labels: podman.labels, all: true) }

        func waitUntil(_ seconds: Double, _ condition: () async throws -> Bool) async throws -> Bool {
            let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
            while ContinuousClock.now < deadline {
                if try await condition() { return true }
                try await Task.sleep(for: .milliseconds(200))
            }
            return try await condition()
        }

        /// A run of ports nobody listens on, in a random place to keep parallel runs apart.
        static func freePortRange(count: Int) throws -> ClosedRange<Int> {
            for _ in 0..<50 {
                let base = Int.random(in: 30_000...58_000)
                let range = base...(base + count - 1)
                if range.allSatisfy(isFree) { return range }
            }
            throw PodmanServiceError("no free run of \(count) ports found")
        }

        static func isFree(_ port: Int) -> Bool { Loopback.isFree(port) }
    }

    final class Outcomes: Sendable {
        private let results = Locked<[Result<EngineEndpoint, EngineUnavailable>]>([])
        func add(_ result: Result<EngineEndpoint, EngineUnavailable>) { results.withLock { $0.append(result) } }
        var all: [Result<EngineEndpoint, EngineUnavailable>] { results.withLock { $0 } }
    }

    static func engineImage(_ podman: PodmanService) async throws -> String {
        let simulator = try #require(EngineImageTests.engineSimulator(), "acestream-engine-sim must be built beside the tests")
        return try await podman.image(packaging: simulator, at: "/usr/bin/python", repository: "acerelay-test-engine")
    }

    static func relay(_ fleet: any EngineSelector) throws -> RelayServer {
        var configuration = RelayConfiguration()
        configuration.listenHost = "127.0.0.1"
        configuration.listenPort = 0
        configuration.workers = 1
        configuration.gracePeriod = 1
        configuration.startTimeout = 20
        let relay = RelayServer(configuration: configuration, selector: fleet, logger: logger)
        try relay.start()
        return relay
    }

    /// Plays `content` through the relay on a thread of its own; the status and bytes received.
    static func play(_ port: UInt16, _ content: Int, bytes: Int, timeout: Double = 20) async -> (status: Int, bytes: Int) {
        await withCheckedContinuation { continuation in
            Thread {
                continuation.resume(returning: LoopbackHTTP.stream(port: Int(port), path: "/ace/getstream?id=\(String(format: "%040x", content))", bytes: bytes, timeout: timeout))
            }.start()
        }
    }

    @Test func aPlayerAskingWhileNoEngineRunsGetsAFreshlyProvisionedEngine() async throws {
        try await PodmanService.with { podman in
            let rig = try Rig(podman: podman, image: try await Self.engineImage(podman)) { $0.maxReplicas = 2 }
            rig.startBackground()
            defer { rig.stop() }
            let relay = try Self.relay(rig.fleet)
            defer { relay.shutdown(timeout: 2) }
            #expect(try await rig.containers().isEmpty)
            let played = await Self.play(relay.port, 1, bytes: 188 * 500)
            #expect(played.status == 200)
            #expect(played.bytes == 188 * 500)
            let containers = try await rig.containers()
            #expect(containers.count == 1)
            #expect(containers.first?.labels["acestream.http_port"] != nil)
            #expect(containers.first?.labels["host.http_port"] == containers.first?.labels["acestream.http_port"], "host network: the engine binds the host port")
            #expect(rig.fleet.engines.first?.health.status == .healthy)
        }
    }

    @Test func minReplicasStartAndARestartAdoptsThemWithoutReusingTheirPorts() async throws {
        try await PodmanService.with { podman in
            let image = try await Self.engineImage(podman)
            let first = try Rig(podman: podman, image: image) { $0.minReplicas = 2; $0.minFreeReplicas = 1; $0.maxReplicas = 4 }
            let created = try await first.provisioner.reconcile()
            #expect(created.provisioned == 2)
            let ports = Set(try await first.containers().compactMap { $0.labels["host.http_port"] })
            #expect(ports.count == 2)
            // A new process: nothing in memory, the containers' labels are the truth.
            let second = try Rig(podman: podman, image: image) { configuration in
                configuration = first.configuration
            }
            let adopted = try await second.provisioner.reconcile()
            #expect(adopted.adopted == 2)
            #expect(adopted.provisioned == 0)
            #expect(Set(second.fleet.engines.map { String($0.port) }) == ports)
            let extra = try await second.provisioner.provision()
            #expect(!ports.contains(String(extra.hostHTTPPort)))
            #expect(try await second.containers().count == 3)
        }
    }

    @Test func aContainerKilledFromOutsideIsReplacedWhileOtherEnginesKeepPlaying() async throws {
        try await PodmanService.with { podman in
            let rig = try Rig(podman: podman, image: try await Self.engineImage(podman)) { $0.minReplicas = 2; $0.maxReplicas = 3 }
            rig.startBackground()
            defer { rig.stop() }
            try await rig.provisioner.reconcile()
            #expect(try await rig.waitUntil(10) { rig.fleet.engines.filter { $0.health.status == .healthy }.count == 2 })
            let relay = try Self.relay(rig.fleet)
            defer { relay.shutdown(timeout: 2) }
            // A long player on one engine, running while the other engine is killed.
            async let longPlay = Self.play(relay.port, 7, bytes: 188 * 20_000, timeout: 30)
            #expect(try await rig.waitUntil(10) { rig.fleet.engines.contains { $0.load == 1 } })
            let idle = try #require(rig.fleet.engines.first { $0.load == 0 })
            try await podman.client.removeContainer(id: idle.id, force: true)
            let changes = try await rig.provisioner.reconcile()
            #expect(changes.lost == 1)
            #expect(changes.provisioned == 1)
            #expect(try await rig.containers().count == 2)
            let played = await longPlay
            #expect(played.status == 200)
            #expect(played.bytes == 188 * 20_000, "the player of the other engine was untouched")
        }
    }

    @Test func idleEnginesAreRemovedAfterTheGracePeriod() async throws {
        try await PodmanService.with { podman in
            let rig = try Rig(podman: podman, image: try await Self.engineImage(podman)) { $0.engineGracePeriod = 1 }
            _ = try await rig.provisioner.provision()
            #expect(try await rig.containers().count == 1)
            try await Task.sleep(for: .milliseconds(1200))
            let changes = try await rig.provisioner.reconcile()
            #expect(changes.removed == 1)
            #expect(try await rig.containers().isEmpty)
            #expect(rig.fleet.engines.isEmpty)
        }
    }

    @Test func aHungEngineTurnsUnhealthyAndGetsNoNewStreams() async throws {
        try await PodmanService.with { podman in
            let rig = try Rig(podman: podman, image: try await Self.engineImage(podman)) { $0.maxReplicas = 1 }
            rig.startBackground()
            defer { rig.stop() }
            let engine = try await rig.provisioner.provision()
            #expect(try await rig.waitUntil(10) { rig.fleet.engine(id: engine.containerID)?.health.status == .healthy })
            #expect(LoopbackHTTP.get(port: engine.hostHTTPPort, path: "/sim/fault?kind=hang")?.status == 200)
            #expect(try await rig.waitUntil(10) { rig.fleet.engine(id: engine.containerID)?.health.status == .unhealthy })
            let refused = Locked<Result<EngineEndpoint, EngineUnavailable>?>(nil)
            rig.fleet.reserveEngine(for: ContentKey(kind: .contentID, value: String(format: "%040x", 9))!, excluding: []) { result in
                refused.withLock { $0 = result }
            }
            guard case .failure(let reason) = refused.withLock({ $0 }) else {
                Issue.record("an unhealthy engine must not get a new stream")
                return
            }
            #expect(reason.code == "max_capacity")
        }
    }

    @Test func aBurstOfTwentyContentsNeverOverbooksAnEngine() async throws {
        try await PodmanService.with { podman in
            let rig = try Rig(podman: podman, image: try await Self.engineImage(podman)) { configuration in
                configuration.minReplicas = 2
                configuration.maxReplicas = 2
                configuration.maxStreamsPerEngine = 3
            }
            rig.startBackground()
            defer { rig.stop() }
            try await rig.provisioner.reconcile()
            #expect(try await rig.waitUntil(10) { rig.fleet.engines.filter { $0.health.status == .healthy }.count == 2 })
            let outcomes = Outcomes()
            let fleet = rig.fleet
            await withTaskGroup(of: Void.self) { group in
                for n in 0..<20 {
                    group.addTask {
                        fleet.reserveEngine(for: ContentKey(kind: .contentID, value: String(format: "%040x", 100 + n))!, excluding: []) { result in
                            outcomes.add(result)
                        }
                    }
                }
            }
            let results = outcomes.all
            #expect(results.count == 20)
            #expect(results.filter { (try? $0.get()) != nil }.count == 6)
            #expect(rig.fleet.engines.allSatisfy { $0.load <= 3 })
        }
    }

    @Test func aStoppedDockerDaemonGivesClearErrorsWhileStaticEnginesServe() async throws {
        var simulatorConfiguration = EngineSimulatorConfiguration()
        simulatorConfiguration.media = .synthetic(bitsPerSecond: 1_000_000)
        let simulator = try EngineSimulator(configuration: simulatorConfiguration, logger: Self.logger)
        try simulator.start()
        defer { simulator.shutdown() }
        let podman = try await PodmanService.start()
        let rig = try Rig(podman: podman, image: "unused") { _ in }
        rig.fleet.register(FleetEngine(endpoint: EngineEndpoint(id: "static", baseURL: "http://127.0.0.1:\(simulator.port)"),
                                       name: "static", host: "127.0.0.1", port: Int(simulator.port), managed: false,
                                       failureThreshold: 2, now: Date()))
        rig.startBackground()
        defer { rig.stop() }
        podman.kill()
        await podman.stop()
        // The outage is the host's state, reported by the status (not thrown: other hosts may answer).
        try await rig.provisioner.reconcile()
        let blocked = try #require(rig.provisioner.status().blocked, "provisioning must be blocked while the daemon is down")
        #expect(blocked.message.contains(podman.socketPath), "the error names where Docker was expected: \(blocked)")
        #expect(blocked.message.contains("DOCKER_HOST"))
        let relay = try Self.relay(rig.fleet)
        defer { relay.shutdown(timeout: 2) }
        let played = await Self.play(relay.port, 3, bytes: 188 * 300)
        #expect(played.status == 200)
        #expect(played.bytes == 188 * 300)
    }
}

extension FleetProvisioningTests {
    @Test func bridgeNetworkEnginesArePublishedOnTheirHostPorts() async throws {
        try await PodmanService.with { podman in
            let rig = try Rig(podman: podman, image: try await Self.engineImage(podman)) { configuration in
                configuration.networkMode = "bridge"
                configuration.maxReplicas = 1
            }
            rig.startBackground()
            defer { rig.stop() }
            let engine = try await rig.provisioner.provision()
            #expect(engine.containerHTTPPort == 6878, "inside its container the engine keeps its default port")
            #expect(try await rig.waitUntil(15) { rig.fleet.engine(id: engine.containerID)?.health.status == .healthy })
            let relay = try Self.relay(rig.fleet)
            defer { relay.shutdown(timeout: 2) }
            let played = await Self.play(relay.port, 11, bytes: 188 * 300)
            #expect(played.status == 200)
            #expect(played.bytes == 188 * 300)
        }
    }

    /// The real binary, as a user runs it with Docker: provisions, serves, is killed,
    /// and after a restart knows the same engine again instead of starting another.
    @Test func serveProvisionsThroughDockerAndARestartAdoptsTheSameEngine() async throws {
        let executable = try #require(Self.acerelayExecutable(), "acerelay must be built beside the tests")
        try await PodmanService.with { podman in
            let image = try await Self.engineImage(podman)
            let range = try Rig.freePortRange(count: 10)
            let dataDirectory = TestDirectory.path("e2e")
            let label = podman.labels.first!
            let launch = ServeLaunch(executable: executable, socketPath: podman.socketPath, image: image, range: range,
                                     dataDirectory: dataDirectory, label: "\(label.key)=\(label.value)")
            let (first, streamPort, firstAPI) = try launch.start()
            let engines = try await Self.pollEngines(port: firstAPI, within: 20) { $0.first?.health == "healthy" }
            let containerID = try #require(engines.first { $0.health == "healthy" }?.id, "the provisioned engine never turned healthy: \(engines)")
            let played = await Self.play(UInt16(streamPort), 21, bytes: 188 * 300)
            #expect(played.status == 200)
            #expect(played.bytes == 188 * 300)
            kill(first.processIdentifier, SIGKILL)
            first.waitUntilExit()
            let (second, _, secondAPI) = try launch.start()
            defer { kill(second.processIdentifier, SIGTERM); second.waitUntilExit() }
            let again = try await Self.pollEngines(port: secondAPI, within: 20) { $0.count == 1 }
            #expect(again.map(\.id) == [containerID])
            try await Task.sleep(for: .seconds(2))
            #expect(try await podman.client.listContainers(labels: podman.labels, all: true).count == 1, "no second engine after the restart")
            // The orchestrator's provisioning route: one more engine fits under MAX_REPLICAS (2)...
            let created = try #require(LoopbackHTTP.request("POST", port: secondAPI, path: "/provision/acestream", body: "{\"labels\":{\"purpose\":\"test\"}}"))
            #expect(created.status == 200, "\(created.body)")
            let fields = try #require(try JSONSerialization.jsonObject(with: Data(created.body.utf8)) as? [String: Any])
            let newID = try #require(fields["container_id"] as? String)
            #expect(range.contains(fields["host_http_port"] as? Int ?? 0))
            #expect(fields["container_http_port"] as? Int == fields["host_http_port"] as? Int, "host network")
            #expect(try await podman.client.inspectContainer(id: newID).labels["purpose"] == "test")
            // ...a third does not, and the refusal has the orchestrator's structured form.
            let refused = try #require(LoopbackHTTP.request("POST", port: secondAPI, path: "/provision/acestream", body: "{}"))
            #expect(refused.status == 503)
            #expect(refused.body.contains("\"code\":\"max_capacity\""))
            #expect(refused.body.contains("\"recovery_eta_seconds\""))
            // DELETE /containers/{id} stops and removes it.
            let removed = try #require(LoopbackHTTP.request("DELETE", port: secondAPI, path: "/containers/\(newID)"))
            #expect(removed.status == 200)
            let remaining = try await podman.client.listContainers(labels: podman.labels, all: true)
            #expect(remaining.map(\.id) == [containerID], "\(remaining.map { ($0.name, $0.state.rawValue) })")
        }
    }

    /// How the restart tests start `acerelay serve` against podman services.
    struct ServeLaunch {
        let executable: URL
        /// `DOCKER_HOST`'s socket; nil when `environment` names the hosts (`DOCKER_HOSTS`).
        let socketPath: String?
        let image: String
        let range: ClosedRange<Int>
        let dataDirectory: String
        let label: String
        /// Set after the defaults, so they win over them.
        var environment: [String: String] = [:]
        /// Where stderr goes (appended, one file over restarts); nowhere when nil.
        var errorLog: URL? = nil
        var logLevel = "warning"

        func start() throws -> (Process, Int, Int) {
            let streamPort = try PodmanService.freeTCPPort(), apiPort = try PodmanService.freeTCPPort()
            let process = Process()
            process.executableURL = executable
            process.arguments = ["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:\(apiPort)",
                                 "--data-dir", dataDirectory, "--provision", "on", "--log-level", logLevel]
            var environment = ProcessInfo.processInfo.environment
            environment["DOCKER_HOST"] = socketPath.map { "unix://\($0)" }
            environment["TARGET_IMAGE"] = image
            environment["DOCKER_NETWORK"] = "host"
            environment["CONTAINER_LABEL"] = label
            environment["PORT_RANGE_HOST"] = "\(range.lowerBound)-\(range.upperBound)"
            environment["MIN_REPLICAS"] = "1"
            environment["MIN_FREE_REPLICAS"] = "0"
            environment["MAX_REPLICAS"] = "2"
            environment["ENGINE_GRACE_PERIOD_S"] = "600"
            environment["HEALTH_CHECK_INTERVAL_S"] = "1"
            environment.merge(self.environment) { _, new in new }
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            if let errorLog {
                if !FileManager.default.fileExists(atPath: errorLog.path) { _ = FileManager.default.createFile(atPath: errorLog.path, contents: nil) }
                let handle = try FileHandle(forWritingTo: errorLog)
                handle.seekToEndOfFile()
                process.standardError = handle
            }
            try process.run()
            return (process, streamPort, apiPort)
        }
    }

    @Test func aBurstOfWaitingContentsStartsOnlyTheEnginesItNeeds() async throws {
        try await PodmanService.with { podman in
            let rig = try Rig(podman: podman, image: try await Self.engineImage(podman)) { configuration in
                configuration.maxReplicas = 6
                configuration.maxStreamsPerEngine = 3
            }
            rig.startBackground()
            defer { rig.stop() }
            let outcomes = Outcomes()
            let fleet = rig.fleet
            for n in 0..<10 {
                fleet.reserveEngine(for: ContentKey(kind: .contentID, value: String(format: "%040x", 200 + n))!, excluding: []) { result in
                    outcomes.add(result)
                }
            }
            #expect(try await rig.waitUntil(30) { outcomes.all.count == 10 })
            #expect(outcomes.all.allSatisfy { (try? $0.get()) != nil }, "every waiting content got an engine")
            #expect(try await rig.containers().count == 4, "ten contents at three per engine need four engines, not ten")
            #expect(rig.fleet.engines.allSatisfy { $0.load <= 3 })
        }
    }

    @Test func anUnhealthyEngineIsReplacedMakeBeforeBreak() async throws {
        try await PodmanService.with { podman in
            let rig = try Rig(podman: podman, image: try await Self.engineImage(podman)) { configuration in
                configuration.minReplicas = 1
                configuration.maxReplicas = 2
                configuration.unhealthyGracePeriod = 0
            }
            rig.startBackground()
            defer { rig.stop() }
            try await rig.provisioner.reconcile()
            let sick = try #require(rig.fleet.engines.first)
            #expect(try await rig.waitUntil(10) { rig.fleet.engine(id: sick.id)?.health.status == .healthy })
            #expect(LoopbackHTTP.get(port: sick.port, path: "/sim/fault?kind=hang")?.status == 200)
            #expect(try await rig.waitUntil(10) { rig.fleet.engine(id: sick.id)?.health.status == .unhealthy })
            // First pass: a replacement is made while the sick engine still exists.
            let make = try await rig.provisioner.reconcile()
            #expect(make.provisioned == 1)
            #expect(make.removed == 0, "never break before the replacement exists")
            #expect(try await rig.containers().count == 2)
            #expect(try await rig.waitUntil(10) { rig.fleet.engines.contains { $0.id != sick.id && $0.health.status == .healthy } })
            // Then the sick one goes.
            let brk = try await rig.provisioner.reconcile()
            #expect(brk.removed == 1)
            #expect(try await rig.containers().map(\.id).allSatisfy { $0 != sick.id })
        }
    }

    @Test func repeatedProvisioningFailuresOpenTheCircuitBreaker() async throws {
        try await PodmanService.with { podman in
            let rig = try Rig(podman: podman, image: "localhost/acerelay-no-such-image:missing") { configuration in
                configuration.circuitBreakerThreshold = 2
                configuration.circuitBreakerCooldown = 60
            }
            for _ in 0..<2 {
                do throws(ProvisioningError) {
                    _ = try await rig.provisioner.provision()
                    Issue.record("a missing image cannot start")
                } catch {
                    #expect(error.code == "general_error")
                    #expect(error.message.contains("no-such-image"), "the Docker error names the image: \(error.message)")
                }
            }
            do throws(ProvisioningError) {
                _ = try await rig.provisioner.provision()
                Issue.record("the breaker should be open")
            } catch {
                #expect(error.code == "circuit_breaker")
                #expect(error.shouldWait)
                #expect(error.recoveryETASeconds > 0)
            }
            #expect(rig.provisioner.status().breaker == .open)
            #expect(try await rig.containers().isEmpty, "failed attempts leave no container behind")
        }
    }

    static func acerelayExecutable() -> URL? {
        let candidates = [Bundle.main.executableURL, URL(fileURLWithPath: CommandLine.arguments[0])]
            .compactMap { $0?.deletingLastPathComponent().appendingPathComponent("acerelay") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// One engine of `GET /engines`: its container id and health.
    struct ListedEngine: Sendable, Equatable {
        var id: String
        var health: String
    }

    /// `GET /engines` on the control port, or nil when it does not answer.
    static func listEngines(port: Int) -> [ListedEngine]? {
        guard let answer = LoopbackHTTP.get(port: port, path: "/engines"), answer.status == 200,
              let list = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [[String: Any]] else { return nil }
        return list.map { ListedEngine(id: $0["container_id"] as? String ?? "", health: $0["health_status"] as? String ?? "") }
    }

    /// Polls `GET /engines` until `accept` holds; the last list seen.
    static func pollEngines(port: Int, within seconds: Double, until accept: @Sendable ([ListedEngine]) -> Bool) async throws -> [ListedEngine] {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        var last: [ListedEngine] = []
        while ContinuousClock.now < deadline {
            if let engines = listEngines(port: port) {
                last = engines
                if accept(engines) { return engines }
            }
            try await Task.sleep(for: .milliseconds(300))
        }
        return last
    }
}
