import DockerEngine
import Testing

@Suite struct DockerHostTests {
    @Test func unsetOrEmptyMeansDefaultSocket() throws {
        #expect(try DockerHost.fromEnvironment([:]) == .unixSocket(path: "/var/run/docker.sock"))
        #expect(try DockerHost.fromEnvironment(["DOCKER_HOST": ""]) == .unixSocket(path: "/var/run/docker.sock"))
    }

    @Test func unixSocketPath() throws {
        let host = try DockerHost(parsing: "unix:///run/user/0/podman/podman.sock")
        #expect(host == .unixSocket(path: "/run/user/0/podman/podman.sock"))
        #expect(host.description == "unix:///run/user/0/podman/podman.sock")
    }

    @Test func tcpHostAndPort() throws {
        #expect(try DockerHost(parsing: "tcp://127.0.0.1:2375") == .tcp(host: "127.0.0.1", port: 2375))
        #expect(try DockerHost(parsing: "tcp://docker.internal:12375/") == .tcp(host: "docker.internal", port: 12375))
        #expect(try DockerHost(parsing: " tcp://[::1]:2376 ") == .tcp(host: "::1", port: 2376))
        #expect(try DockerHost(parsing: "tcp://[::1]:2376").description == "tcp://[::1]:2376")
    }

    @Test func aHostListIsCommaSeparatedWithBlanksAndRepeatsDropped() throws {
        let hosts = try DockerHost.list(parsing: " unix:///run/a.sock, tcp://10.0.0.2:2375 ,,unix:///run/a.sock,tcp://[fd00::3]")
        #expect(hosts == [.unixSocket(path: "/run/a.sock"), .tcp(host: "10.0.0.2", port: 2375), .tcp(host: "fd00::3", port: 2375)])
        #expect(hosts.map(\.machineAddress) == [nil, "10.0.0.2", "fd00::3"])
        #expect(throws: DockerError.invalidHost(value: " ssh://b", reason: "unsupported scheme")) {
            try DockerHost.list(parsing: "unix:///run/a.sock, ssh://b")
        }
    }

    @Test func tcpWithoutPortUsesDockersPlainPort() throws {
        #expect(try DockerHost(parsing: "tcp://10.0.0.5") == .tcp(host: "10.0.0.5", port: 2375))
    }

    @Test(arguments: [
        "ssh://user@host", "npipe:////./pipe/docker_engine", "fd://", "/var/run/docker.sock",
        "garbage", "unix://relative.sock", "unix://", "tcp://", "tcp://host:0", "tcp://host:99999",
        "tcp://host:port", "tcp://host:2375/path", "tcp://[::1",
    ])
    func unsupportedValuesAreRefusedWithTheAcceptedForms(_ value: String) {
        let error = #expect(throws: DockerError.self) { try DockerHost(parsing: value) }
        guard case .invalidHost(let shown, _)? = error else {
            Issue.record("expected invalidHost, got \(String(describing: error))")
            return
        }
        #expect(shown == value)
        #expect(error?.description.contains("unix:///path/to/docker.sock or tcp://host:port") == true)
        #expect(error?.description.contains("\n") == false)
    }

    @Test func environmentValueIsUsed() throws {
        let client = try DockerClient(environment: ["DOCKER_HOST": "tcp://127.0.0.1:1"])
        #expect(client.host == .tcp(host: "127.0.0.1", port: 1))
    }
}
