import DockerEngine
import Foundation
import Testing

/// The client against a real podman service on a unix socket.
@Suite(.timeLimit(.minutes(2)))
struct DockerClientTests {
    @Test func pingAndVersion() async throws {
        try await PodmanService.with { podman in
            try await podman.client.ping()
            let version = try await podman.client.version()
            #expect(version.apiVersion == "1.41")
            #expect(version.os == "linux")
            #expect(!version.arch.isEmpty)
            #expect(!version.version.isEmpty)
        }
    }

    @Test func containerLifecycleFromCreateToRemove() async throws {
        try await PodmanService.with { podman in
            let client = podman.client
            let image = try await podman.busyboxImage()
            let marker = "lifecycle-\(UUID().uuidString.prefix(8))"
            var labels = podman.labels
            labels["acerelay.test.case"] = marker
            labels["acestream.http_port"] = "6878"
            let spec = ContainerSpec(
                image: image,
                command: ["/bin/busybox", "sh", "-c", "echo $GREETING; exec /bin/busybox sleep 600"],
                environment: ["GREETING": "hello engine"],
                labels: labels, networkMode: .host, useInit: true)

            let id = try await client.createContainer(name: marker, spec: spec)
            #expect(id.count == 64)
            let created = try await client.inspectContainer(id: id)
            #expect(created.state == .created)
            #expect(created.startedAt == nil)

            try await client.startContainer(id: id)
            let running = try await client.inspectContainer(id: marker)
            #expect(running.id == id)
            #expect(running.name == marker)
            #expect(running.state == .running)
            #expect(running.isRunning)
            #expect(running.labels["acerelay.test.case"] == marker)
            #expect(running.labels["acestream.http_port"] == "6878")
            #expect(running.environment.contains("GREETING=hello engine"))
            #expect(running.command == spec.command)
            #expect(running.networkMode == .host)
            #expect(running.publishedPorts.isEmpty)
            #expect(running.startedAt != nil)
            #expect(running.created != nil)

            let found = try await client.listContainers(labels: ["acerelay.test.case": marker])
            #expect(found.map(\.id) == [id])
            #expect(found.first?.name == marker)
            #expect(found.first?.isRunning == true)
            #expect(found.first?.labels["acestream.http_port"] == "6878")
            let other = try await client.listContainers(labels: ["acerelay.test.case": marker + "-other"], all: true)
            #expect(other.isEmpty)

            let stopStarted = ContinuousClock.now
            try await client.stopContainer(id: id, timeoutSeconds: 5)
            // With an init as PID 1 the command gets SIGTERM; without, stop would wait the whole 5 s.
            #expect(ContinuousClock.now - stopStarted < .seconds(4))
            try await client.stopContainer(id: id, timeoutSeconds: 5)  // already stopped: not an error
            let exited = try await client.inspectContainer(id: id)
            #expect(exited.state == .exited)
            #expect(!exited.isRunning)
            #expect(exited.exitCode == 143)
            #expect(exited.finishedAt != nil)
            #expect(try await client.listContainers(labels: ["acerelay.test.case": marker]).isEmpty)
            #expect(try await client.listContainers(labels: ["acerelay.test.case": marker], all: true).count == 1)

            try await client.removeContainer(id: id)
            let error = await #expect(throws: DockerError.self) { try await client.inspectContainer(id: id) }
            guard case .notFound(let message)? = error else {
                Issue.record("expected notFound, got \(String(describing: error))")
                return
            }
            #expect(message.contains("no such container"))
        }
    }

    @Test func creatingFromAMissingImageNamesTheImage() async throws {
        try await PodmanService.with { podman in
            let spec = ContainerSpec(image: "acerelay-test-missing:nope", labels: podman.labels)
            let error = await #expect(throws: DockerError.self) {
                try await podman.client.createContainer(name: nil, spec: spec)
            }
            guard case .notFound(let message)? = error else {
                Issue.record("expected notFound, got \(String(describing: error))")
                return
            }
            #expect(message.contains("acerelay-test-missing"))
            #expect(error?.description.contains("acerelay-test-missing") == true)
        }
    }

    @Test func takenNameAndRemovingARunningContainerAreConflicts() async throws {
        try await PodmanService.with { podman in
            let name = "conflict-\(UUID().uuidString.prefix(8))"
            let spec = ContainerSpec(
                image: try await podman.busyboxImage(), command: ["/bin/busybox", "sleep", "600"],
                labels: podman.labels, networkMode: .host)
            let id = try await podman.client.createContainer(name: name, spec: spec)

            let second = await #expect(throws: DockerError.self) {
                try await podman.client.createContainer(name: name, spec: spec)
            }
            guard case .conflict(let message)? = second else {
                Issue.record("expected conflict, got \(String(describing: second))")
                return
            }
            #expect(message.contains(name))

            try await podman.client.startContainer(id: id)
            try await podman.client.startContainer(id: id)  // already running: not an error
            let removal = await #expect(throws: DockerError.self) {
                try await podman.client.removeContainer(id: id, force: false)
            }
            guard case .conflict? = removal else {
                Issue.record("expected conflict, got \(String(describing: removal))")
                return
            }
            try await podman.client.removeContainer(id: id, force: true)
            #expect(try await podman.client.listContainers(labels: podman.labels, all: true).isEmpty)
        }
    }

    @Test func bridgePortBindingsArePublishedAndServe() async throws {
        try await PodmanService.with { podman in
            let hostPort = try PodmanService.freeTCPPort()
            let spec = ContainerSpec(
                image: try await podman.busyboxImage(),
                command: ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/tmp"],
                labels: podman.labels, networkMode: .bridge,
                portBindings: [PortBinding(containerPort: ContainerPort(8080), hostPort: hostPort, hostIP: "127.0.0.1")])
            let id = try await podman.client.createContainer(name: nil, spec: spec)
            try await podman.client.startContainer(id: id)

            let binding = PortBinding(containerPort: ContainerPort(8080), hostPort: hostPort, hostIP: "127.0.0.1")
            #expect(try await podman.client.inspectContainer(id: id).publishedPorts == [binding])
            #expect(try await podman.client.listContainers(labels: podman.labels).first?.publishedPorts == [binding])
            // busybox httpd answers 404 for the empty /tmp: the port reaches the container.
            let answer = try await eventually { LoopbackHTTP.get(port: hostPort, path: "/") }
            #expect(answer.status == 404)
        }
    }

    @Test func importedImageGetsTheRequestedTag() async throws {
        try await PodmanService.with { podman in
            let tarball = podman.directory.appendingPathComponent("busybox.tar")
            try PodmanService.makeRootfsTar(executable: URL(fileURLWithPath: "/bin/busybox"), at: "/bin/busybox", tarball: tarball)
            let tag = "t\(UUID().uuidString.prefix(8).lowercased())"
            let reference = try await podman.client.importImage(rootfsTar: tarball, repository: "acerelay-test-import", tag: tag)
            #expect(reference == "acerelay-test-import:\(tag)")
            #expect(try await podman.client.imageExists(reference))
            #expect(try await !podman.client.imageExists("acerelay-test-import:never-made"))
            try await podman.client.removeImage(reference, force: true)
            #expect(try await !podman.client.imageExists(reference))
            // podman also named the import `latest`; Docker did not, hence `try?`.
            try? await podman.client.removeImage("acerelay-test-import:latest", force: true)

            let missing = await #expect(throws: DockerError.self) {
                try await podman.client.importImage(
                    rootfsTar: podman.directory.appendingPathComponent("absent.tar"), repository: "x", tag: "y")
            }
            guard case .unreadableFile? = missing else {
                Issue.record("expected unreadableFile, got \(String(describing: missing))")
                return
            }
        }
    }
}

/// Polls `probe` until it gives a value, for servers that take a moment to start.
func eventually<T>(within limit: Duration = .seconds(10), _ probe: () -> T?) async throws -> T {
    let deadline = ContinuousClock.now + limit
    while true {
        if let value = probe() { return value }
        guard ContinuousClock.now < deadline else { throw PodmanServiceError("no answer within \(limit)") }
        try await Task.sleep(for: .milliseconds(100))
    }
}
