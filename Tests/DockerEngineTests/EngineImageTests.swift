import DockerEngine
import Foundation
import Testing

/// A dynamically linked Swift executable (the engine simulator) packaged as an
/// image without a registry and run the way acerelay runs engines.
@Suite(.timeLimit(.minutes(2)))
struct EngineImageTests {
    @Test func engineSimulatorRunsFromAPackagedImageOnTheHostNetwork() async throws {
        let simulator = try #require(
            Self.engineSimulator(),
            "acestream-engine-sim is not built next to the test bundle: run `swift build --product acestream-engine-sim` with the same scratch path, or set ACERELAY_ENGINE_SIM")
        let libraries = try PodmanService.sharedLibraries(of: simulator)
        #expect(libraries.contains { $0.hasSuffix("/libswiftCore.so") })
        #expect(libraries.contains { $0.contains("ld-linux") })

        try await PodmanService.with { podman in
            let image = try await podman.image(packaging: simulator, repository: "acerelay-test-engine-sim")
            let port = try PodmanService.freeTCPPort()
            var labels = podman.labels
            labels["acestream.http_port"] = String(port)
            let spec = ContainerSpec(
                image: image,
                command: ["/acestream-engine-sim", "--http-port", String(port), "--bind-all"],
                labels: labels, networkMode: .host, useInit: true)
            let id = try await podman.client.createContainer(name: "engine-sim-\(port)", spec: spec)
            try await podman.client.startContainer(id: id)

            let answer = try await eventually {
                LoopbackHTTP.get(port: port, path: "/webui/api/service?method=get_version")
            }
            #expect(answer.status == 200)
            #expect(answer.body.contains("\"version\""))

            let stopStarted = ContinuousClock.now
            try await podman.client.stopContainer(id: id, timeoutSeconds: 10)
            #expect(ContinuousClock.now - stopStarted < .seconds(5))
            try await podman.client.removeContainer(id: id)
        }
    }

    /// The simulator built beside the test bundle (`swift test` builds every product),
    /// or the one `ACERELAY_ENGINE_SIM` names.
    static func engineSimulator() -> URL? {
        if let path = ProcessInfo.processInfo.environment["ACERELAY_ENGINE_SIM"] {
            return URL(fileURLWithPath: path)
        }
        let candidates = [Bundle.main.executableURL, URL(fileURLWithPath: CommandLine.arguments[0])]
            .compactMap { $0?.deletingLastPathComponent().appendingPathComponent("acestream-engine-sim") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }
}
