import DockerEngine
import Foundation
import Testing

/// What callers see when the daemon is gone or hangs.
@Suite(.timeLimit(.minutes(1)))
struct UnreachableDaemonTests {
    @Test func killedDaemonIsUnreachableQuicklyAndNamesTheSocket() async throws {
        let podman = try await PodmanService.start()
        try await podman.client.ping()
        podman.kill()

        let started = ContinuousClock.now
        let error = await #expect(throws: DockerError.self) { try await podman.client.listContainers() }
        #expect(ContinuousClock.now - started < .seconds(5))
        guard case .daemonUnreachable(let host, _)? = error else {
            Issue.record("expected daemonUnreachable, got \(String(describing: error))")
            await podman.stop()
            return
        }
        #expect(host == podman.host)
        let text = error?.description ?? ""
        #expect(text.contains(podman.socketPath))
        #expect(text.contains("start the daemon or set DOCKER_HOST"))
        #expect(!text.contains("\n"))
        await podman.stop()
    }

    @Test func missingSocketIsUnreachable() async throws {
        let client = DockerClient(host: .unixSocket(path: "/tmp/acerelay-no-such-daemon.sock"))
        let started = ContinuousClock.now
        let error = await #expect(throws: DockerError.self) { try await client.ping() }
        #expect(ContinuousClock.now - started < .seconds(5))
        guard case .daemonUnreachable(_, let reason)? = error else {
            Issue.record("expected daemonUnreachable, got \(String(describing: error))")
            return
        }
        #expect(reason == "no such file or directory")
        #expect(error?.description.contains("unix:///tmp/acerelay-no-such-daemon.sock") == true)
    }

    @Test func closedTCPPortIsUnreachable() async throws {
        let port = try PodmanService.freeTCPPort()
        let client = DockerClient(host: .tcp(host: "127.0.0.1", port: port))
        let error = await #expect(throws: DockerError.self) { try await client.version() }
        guard case .daemonUnreachable(_, let reason)? = error else {
            Issue.record("expected daemonUnreachable, got \(String(describing: error))")
            return
        }
        #expect(reason == "connection refused")
        #expect(error?.description.contains("tcp://127.0.0.1:\(port)") == true)
    }

    @Test func hungDaemonTimesOutWithoutSerializingCalls() async throws {
        let silent = try SilentSocket()
        let client = DockerClient(host: .unixSocket(path: silent.path), requestTimeout: .seconds(1))
        let started = ContinuousClock.now
        // Ten calls at once, one second each: they run side by side on the client's thread.
        let errors = await withTaskGroup(of: DockerError?.self) { group in
            for _ in 0..<10 {
                group.addTask {
                    do throws(DockerError) {
                        try await client.ping()
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            return await group.reduce(into: [DockerError?]()) { $0.append($1) }
        }
        #expect(ContinuousClock.now - started < .seconds(4))
        #expect(errors.count == 10)
        for error in errors {
            guard case .daemonUnreachable(_, let reason)? = error else {
                Issue.record("expected daemonUnreachable, got \(String(describing: error))")
                continue
            }
            #expect(reason.lowercased().contains("timed out"))
        }
    }

    @Test func cancellingACallToAHungDaemonEndsItPromptly() async throws {
        let silent = try SilentSocket()
        let client = DockerClient(host: .unixSocket(path: silent.path), requestTimeout: .seconds(30))
        let call = Task { try await client.ping() }
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        call.cancel()
        let result = await call.result
        #expect(ContinuousClock.now - started < .seconds(2))
        guard case .failure(let error) = result, error as? DockerError == .cancelled else {
            Issue.record("expected cancelled, got \(result)")
            return
        }
    }
}
