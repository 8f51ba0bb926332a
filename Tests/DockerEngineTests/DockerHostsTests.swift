import DockerEngine
import EngineFleet
import Foundation
import Locking
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The real binary with engines on real Docker hosts (podman services, each
/// with storage of its own, so they are two hosts that do not share
/// containers): spread, outage, recovery and restarts, as `/orchestrator/status`,
/// `/metrics` and the log show them.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct DockerHostsTests {
    typealias Launch = FleetProvisioningTests.ServeLaunch

    @Test func enginesSpreadOverTwoHostsOneStoppedIsNamedAndSkippedAndItsEnginesAreFoundAgain() async throws {
        let executable = try #require(FleetProvisioningTests.acerelayExecutable(), "acerelay must be built beside the tests")
        try await PodmanService.with(isolatedStorage: true) { a in
            try await PodmanService.with(isolatedStorage: true) { b in
                let image = try await FleetProvisioningTests.engineImage(a)
                #expect(try await FleetProvisioningTests.engineImage(b) == image)
                let (nameA, nameB) = (a.host.description, b.host.description)
                let log = Self.temporaryFile("acerelay-hosts-log")
                var launch = Launch(executable: executable, socketPath: nil, image: image, range: try FleetProvisioningTests.Rig.freePortRange(count: 12),
                                    dataDirectory: Self.temporaryFile("acerelay-hosts-data").path,
                                    label: "acerelay.test.docker-hosts=\(UUID().uuidString.prefix(8))")
                launch.environment = ["DOCKER_HOSTS": "\(nameA),\(nameB)", "MIN_REPLICAS": "2", "MAX_REPLICAS": "4",
                                      "ACERELAY_RECONCILE_INTERVAL_S": "1"]
                launch.errorLog = log
                launch.logLevel = "info"
                var (serve, _, api) = try launch.start()
                defer { PodmanService.stop(serve.processIdentifier, signal: SIGKILL) }

                // Fewest first: the two MIN_REPLICAS engines go one to each host.
                var status = try await Self.pollStatus(api, within: 40) { Self.engines($0) == [nameA: 1, nameB: 1] && Self.healthy($0) == 2 }
                #expect(Self.engines(status) == [nameA: 1, nameB: 1], "\(status)")
                #expect(status["status"] as? String == "healthy")
                for host in [a, b] {
                    let containers = try await host.client.listContainers(labels: [:], all: true)
                    #expect(containers.map { $0.labels["acerelay.docker_host"] } == [host.host.description], "labelled with their host")
                }

                // b stops answering: named in the status, provisioning goes on on a.
                await b.stopService()
                status = try await Self.pollStatus(api, within: 10) { Self.reachable($0)[nameB] == false }
                #expect(Self.reachable(status) == [nameA: true, nameB: false], "\(status)")
                #expect(status["status"] as? String == "degraded")
                #expect(Self.provisioning(status)["can_provision"] as? Bool == true, "a still answers")
                let lastError = Self.hosts(status).first { $0["host"] as? String == nameB }?["last_error"] as? String
                #expect(lastError?.contains(b.socketPath) == true, "\(String(describing: lastError))")
                let created = try #require(LoopbackHTTP.request("POST", port: api, path: "/provision/acestream", body: "{}"))
                #expect(created.status == 200, "\(created.body)")
                let createdID = try #require((try? JSONSerialization.jsonObject(with: Data(created.body.utf8)) as? [String: Any])?["container_id"] as? String)
                #expect(try await a.client.inspectContainer(id: createdID).labels["acerelay.docker_host"] == nameA)

                // acerelay restarts while b is down: it finds a's two engines; b's comes back with b.
                PodmanService.stop(serve.processIdentifier)
                (serve, _, api) = try launch.start()
                status = try await Self.pollStatus(api, within: 20) { Self.engines($0)[nameA] == 2 && Self.reachable($0)[nameB] == false }
                #expect(Self.engines(status) == [nameA: 2, nameB: 0], "\(status)")
                try await b.startService()
                status = try await Self.pollStatus(api, within: 20) { Self.engines($0) == [nameA: 2, nameB: 1] && Self.healthy($0) == 3 }
                #expect(Self.engines(status) == [nameA: 2, nameB: 1], "b's engine adopted once b answers: \(status)")
                #expect(Self.reachable(status) == [nameA: true, nameB: true])
                #expect(status["status"] as? String == "healthy")

                // A restart with both answering finds every engine by its label, and starts none.
                PodmanService.stop(serve.processIdentifier)
                (serve, _, api) = try launch.start()
                status = try await Self.pollStatus(api, within: 20) { Self.engines($0) == [nameA: 2, nameB: 1] }
                #expect(Self.engines(status) == [nameA: 2, nameB: 1], "\(status)")
                #expect(try await a.client.listContainers(all: true).count + b.client.listContainers(all: true).count == 3)
                PodmanService.stop(serve.processIdentifier)

                let lines = Self.lines(log)
                #expect(lines.filter { $0.contains("Docker host unreachable") }.count == 2, "once per run that saw b down: \(lines)")
                #expect(lines.filter { $0.contains("Docker host reachable again") }.count == 1, "\(lines)")
            }
        }
    }

    @Test func aStoppedSingleHostDegradesTheStatusUntilItAnswersWhileAPlayerKeepsItsRate() async throws {
        let executable = try #require(FleetProvisioningTests.acerelayExecutable(), "acerelay must be built beside the tests")
        try await PodmanService.with { podman in
            let image = try await FleetProvisioningTests.engineImage(podman)
            let label = podman.labels.first!
            let log = Self.temporaryFile("acerelay-host-log")
            let interval = 2.0
            var launch = Launch(executable: executable, socketPath: podman.socketPath, image: image,
                                range: try FleetProvisioningTests.Rig.freePortRange(count: 10),
                                dataDirectory: Self.temporaryFile("acerelay-host-data").path, label: "\(label.key)=\(label.value)")
            launch.environment = ["ACERELAY_RECONCILE_INTERVAL_S": String(interval)]
            launch.errorLog = log
            launch.logLevel = "info"
            let (serve, streamPort, api) = try launch.start()
            defer { PodmanService.stop(serve.processIdentifier, signal: SIGKILL) }
            var status = try await Self.pollStatus(api, within: 40) { $0["status"] as? String == "healthy" }
            #expect(status["status"] as? String == "healthy", "\(status)")
            #expect(Self.provisioning(status)["can_provision"] as? Bool == true)

            let player = RatePlayer(port: streamPort, path: "/ace/getstream?id=\(String(format: "%040x", 4242))")
            defer { player.stop() }
            _ = try await eventually(within: .seconds(15)) { player.bytes(since: .distantPast) > 0 ? true : nil }
            try await Task.sleep(for: .seconds(3))
            let before = player.rate(from: Date().addingTimeInterval(-2.5), to: Date())

            await podman.stopService()
            let stopped = Date()
            status = try await Self.pollStatus(api, within: 10) { Self.provisioning($0)["can_provision"] as? Bool == false }
            let noticed = Date().timeIntervalSince(stopped)
            #expect(noticed <= interval + 1.5, "the outage showed after \(noticed) s, more than one reconciliation interval")
            #expect(status["status"] as? String == "degraded", "\(status)")
            let details = try #require(Self.provisioning(status)["blocked_reason_details"] as? [String: Any], "\(status)")
            #expect(details["code"] as? String == "general_error")
            #expect(details["should_wait"] as? Bool == true)
            #expect(details["can_retry"] as? Bool == true)
            #expect((details["message"] as? String)?.contains(podman.socketPath) == true, "\(details)")
            #expect(Self.reachable(status) == [podman.host.description: false])
            // Three more rounds down: a line per retry would show here.
            try await Task.sleep(for: .seconds(interval * 3))
            let metrics = LoopbackHTTP.get(port: api, path: "/metrics")?.body ?? ""
            #expect(metrics.contains("acerelay_docker_host_up{host=\"\(podman.host.description)\"} 0"), "\(metrics.prefix(3000))")
            let errors = metrics.split(separator: "\n").first { $0.hasPrefix("acerelay_docker_errors_total{host=\"\(podman.host.description)\"}") }
            #expect((errors?.split(separator: " ").last).flatMap { Double($0) } ?? 0 >= 3, "\(String(describing: errors))")

            try await podman.startService()
            let started = Date()
            status = try await Self.pollStatus(api, within: 10) { $0["status"] as? String == "healthy" }
            #expect(Date().timeIntervalSince(started) <= interval + 1.5)
            #expect(Self.provisioning(status)["can_provision"] as? Bool == true, "\(status)")
            #expect(Self.provisioning(status)["blocked_reason_details"] is NSNull)
            let during = player.rate(from: stopped, to: started)
            try await Task.sleep(for: .seconds(1))
            player.stop()
            #expect(before > 100_000, "the engine plays about 250 kB/s: \(before)")
            #expect(during >= before * 0.8, "the player's rate fell from \(before) to \(during) B/s while Docker was down")
            #expect(player.longestGap < 2, "the player waited \(player.longestGap) s for bytes")

            let lines = Self.lines(log)
            #expect(lines.filter { $0.contains("cannot reach") }.count == 1, "the outage is said once, not per retry: \(lines)")
            #expect(lines.filter { $0.contains("Docker host reachable again") }.count == 1, "\(lines)")
        }
    }

    /// A host that answers but cannot start the engine (it lacks the image) is
    /// passed over for the next one within the same attempt.
    @Test func aHostWithoutTheImageIsPassedOverForTheNextHost() async throws {
        try await PodmanService.with(isolatedStorage: true) { a in
            try await PodmanService.with(isolatedStorage: true) { b in
                var configuration = FleetConfiguration()
                configuration.image = try await FleetProvisioningTests.engineImage(b)
                configuration.networkMode = "host"
                configuration.containerLabel = ("acerelay.test.docker-hosts", String(UUID().uuidString.prefix(8)))
                configuration.portRange = try FleetProvisioningTests.Rig.freePortRange(count: 4)
                configuration.minReplicas = 0
                configuration.minFreeReplicas = 0
                let fleet = EngineFleet(maxStreamsPerEngine: 3, startupTimeout: 10, failureThreshold: 2, logger: FleetProvisioningTests.logger)
                let provisioner = EngineProvisioner(configuration: configuration, dockerHosts: [a.client, b.client], fleet: fleet,
                                                    store: nil, logger: FleetProvisioningTests.logger)
                // Both hosts have no engine: the tie goes to a, which lacks the image.
                let engine = try await provisioner.provision()
                #expect(try await b.client.inspectContainer(id: engine.containerID).labels["acerelay.docker_host"] == b.host.description)
                #expect(try await a.client.listContainers(all: true).isEmpty)
                #expect(provisioner.dockerHosts().map(\.reachable) == [true, true], "a answered: it is not down")
                #expect(provisioner.provisioningCounts.failed == 0, "the attempt succeeded")
            }
        }
    }

    @Test func dockerHostsAndDockerHostTogetherStopStartUpWithOneLine() throws {
        let executable = try #require(FleetProvisioningTests.acerelayExecutable(), "acerelay must be built beside the tests")
        let process = Process()
        process.executableURL = executable
        process.arguments = ["serve", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--data-dir", Self.temporaryFile("acerelay-conflict").path]
        var environment = ProcessInfo.processInfo.environment
        environment["DOCKER_HOST"] = "unix:///run/one.sock"
        environment["DOCKER_HOSTS"] = "unix:///run/a.sock,unix:///run/b.sock"
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        // Not waitUntilExit: it was seen to hang on a child that had exited.
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        try #require(!process.isRunning, "acerelay kept running with DOCKER_HOST and DOCKER_HOSTS both set")
        #expect(process.terminationStatus != 0)
        let lines = output.split(separator: "\n")
        #expect(lines.count == 1, "\(lines)")
        #expect(output.contains("DOCKER_HOSTS") && output.contains("DOCKER_HOST unset"), "\(output)")
    }

    // MARK: Helpers

    static func temporaryFile(_ prefix: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
    }

    static func lines(_ file: URL) -> [String] {
        ((try? String(contentsOf: file, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Polls `GET /orchestrator/status` until `accept` holds; the last answer seen (empty if none).
    static func pollStatus(_ port: Int, within seconds: Double, until accept: ([String: Any]) -> Bool) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        var last: [String: Any] = [:]
        while Date() < deadline {
            if let answer = LoopbackHTTP.get(port: port, path: "/orchestrator/status"), answer.status == 200,
               let body = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any] {
                last = body
                if accept(body) { return body }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        return last
    }

    static func hosts(_ status: [String: Any]) -> [[String: Any]] { status["docker_hosts"] as? [[String: Any]] ?? [] }

    static func engines(_ status: [String: Any]) -> [String: Int] {
        Dictionary(hosts(status).map { ($0["host"] as? String ?? "", $0["engines"] as? Int ?? -1) }, uniquingKeysWith: { a, _ in a })
    }

    static func reachable(_ status: [String: Any]) -> [String: Bool] {
        Dictionary(hosts(status).map { ($0["host"] as? String ?? "", $0["reachable"] as? Bool ?? false) }, uniquingKeysWith: { a, _ in a })
    }

    static func healthy(_ status: [String: Any]) -> Int { (status["engines"] as? [String: Any])?["healthy"] as? Int ?? 0 }

    static func provisioning(_ status: [String: Any]) -> [String: Any] { status["provisioning"] as? [String: Any] ?? [:] }
}

/// A player on a thread of its own that reads as fast as bytes come and keeps
/// when they came, to measure its rate over any stretch of time.
final class RatePlayer: Sendable {
    private let samples = Locked<[(at: Date, bytes: Int)]>([])
    private let stopped = Atomic<Bool>(false)

    init(port: Int, path: String) {
        Thread { [self] in run(port: port, path: path) }.start()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    /// Bytes received after `start`.
    func bytes(since start: Date) -> Int { samples.withLock { $0.filter { $0.at > start }.reduce(0) { $0 + $1.bytes } } }

    /// Bytes per second received between `start` and `end`.
    func rate(from start: Date, to end: Date) -> Double {
        let total = samples.withLock { $0.filter { $0.at > start && $0.at <= end }.reduce(0) { $0 + $1.bytes } }
        return Double(total) / max(end.timeIntervalSince(start), 0.001)
    }

    /// The longest wait between two reads, in seconds, once bytes flowed.
    var longestGap: Double {
        samples.withLock { samples in
            zip(samples, samples.dropFirst()).map { $1.at.timeIntervalSince($0.at) }.max() ?? .infinity
        }
    }

    private func run(port: Int, path: String) {
        guard let fd = LoopbackHTTP.connected(port: port, timeoutSeconds: 1) else { return }
        defer { close(fd) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !stopped.load(ordering: .relaxed) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return }
            if n < 0 { if errno == EAGAIN || errno == EINTR { continue } else { return } }
            samples.withLock { $0.append((Date(), n)) }
        }
    }
}
