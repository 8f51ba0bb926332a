import Foundation
import Testing
@testable import DockerEngine

/// The JSON and query strings the client sends and reads, without a daemon.
@Suite struct WireFormatTests {
    @Test func createBodyUsesEngineAPIFieldNames() throws {
        let spec = ContainerSpec(
            image: "engine:1", command: ["/engine", "--http-port", "6878"],
            environment: ["B": "2", "A": "1=x"], labels: ["acestream.http_port": "6878"],
            networkMode: .container("gluetun"),
            portBindings: [PortBinding(containerPort: ContainerPort(6878), hostPort: 19000, hostIP: "127.0.0.1"),
                           PortBinding(containerPort: ContainerPort(8621, .udp), hostPort: nil)],
            useInit: true, restartPolicy: .onFailure(maxRetries: 3))
        let json = try #require(JSONSerialization.jsonObject(with: Data(spec.createBody())) as? [String: Any])
        #expect(json["Image"] as? String == "engine:1")
        #expect(json["Cmd"] as? [String] == ["/engine", "--http-port", "6878"])
        #expect(json["Env"] as? [String] == ["A=1=x", "B=2"])
        #expect(json["Labels"] as? [String: String] == ["acestream.http_port": "6878"])
        #expect((json["ExposedPorts"] as? [String: Any]).map { Set($0.keys) } == ["6878/tcp", "8621/udp"])
        let hostConfig = try #require(json["HostConfig"] as? [String: Any])
        #expect(hostConfig["NetworkMode"] as? String == "container:gluetun")
        #expect(hostConfig["Init"] as? Bool == true)
        let restart = try #require(hostConfig["RestartPolicy"] as? [String: Any])
        #expect(restart["Name"] as? String == "on-failure")
        #expect(restart["MaximumRetryCount"] as? Int == 3)
        let bindings = try #require(hostConfig["PortBindings"] as? [String: [[String: String]]])
        #expect(bindings["6878/tcp"] == [["HostIp": "127.0.0.1", "HostPort": "19000"]])
        #expect(bindings["8621/udp"] == [["HostIp": "", "HostPort": ""]])
    }

    @Test func emptyCommandKeepsTheImagesOwn() throws {
        let json = try #require(JSONSerialization.jsonObject(with: Data(ContainerSpec(image: "x").createBody())) as? [String: Any])
        #expect(json["Cmd"] == nil)
    }

    @Test func labelFilterIsDockersJSONAndURLEncoded() {
        let filter = DockerClient.labelFilter(["b": "2", "a": "x=y", "flag": ""])
        #expect(filter == #"{"label":["a=x=y","b=2","flag"]}"#)
        #expect(EngineRequest.encodeQueryComponent(filter)
            == "%7B%22label%22%3A%5B%22a%3Dx%3Dy%22%2C%22b%3D2%22%2C%22flag%22%5D%7D")
        let request = EngineRequest(method: .get, path: "/containers/json", query: [("all", "true"), ("filters", "{\"label\":[\"k=v\"]}")], timeout: .seconds(1))
        #expect(request.target == "/containers/json?all=true&filters=%7B%22label%22%3A%5B%22k%3Dv%22%5D%7D")
    }

    @Test func imageReferencesKeepSlashesAndColonsInPaths() {
        #expect(EngineRequest.encodePathElement("localhost/engine:1.0", keepingSlash: true) == "localhost/engine:1.0")
        #expect(EngineRequest.encodePathElement("a b/c") == "a%20b%2Fc")
    }

    @Test func containerPortsParseFromAPIKeys() {
        #expect(ContainerPort(apiKey: "6878/tcp") == ContainerPort(6878))
        #expect(ContainerPort(apiKey: "8621/UDP") == ContainerPort(8621, .udp))
        #expect(ContainerPort(apiKey: "80") == ContainerPort(80))
        #expect(ContainerPort(apiKey: "x/tcp") == nil)
        #expect(ContainerPort(apiKey: "80/quic") == nil)
    }

    @Test func timestampsKeepNanosecondsAndOffsets() throws {
        let utc = try #require(EngineTimestamp.parse("2026-11-21T08:35:13.523889148Z"))
        #expect(abs(utc.timeIntervalSince1970 - 1_795_250_113.523889148) < 1e-5)
        let offset = try #require(EngineTimestamp.parse("2026-11-21T10:35:13+02:00"))
        #expect(offset.timeIntervalSince1970 == 1_795_250_113)
        #expect(EngineTimestamp.parse("0001-01-01T00:00:00Z") == nil)
        #expect(EngineTimestamp.parse("yesterday") == nil)
    }

    @Test func podmansFiveHundredsForTakenNamesAreConflicts() {
        let taken = EngineResponse(status: 500, body: Array(#"{"cause":"that name is already in use","message":"the container name \"x\" is already in use","response":500}"#.utf8))
        #expect(DockerClient.error(for: taken) == .conflict(message: #"the container name "x" is already in use"#))
        let other = EngineResponse(status: 500, body: Array("oops".utf8))
        #expect(DockerClient.error(for: other) == .apiError(status: 500, message: "oops"))
    }

    @Test func importProgressGivesTheImageIDOrTheError() throws {
        let podman = EngineResponse(status: 200, body: Array(#"{"status":"sha256:abc","progress":"","progressDetail":{},"id":"sha256:abc"}"#.utf8) + [10])
        #expect(try DockerClient.importedImageID(podman) == "sha256:abc")
        let docker = EngineResponse(status: 200, body: Array(#"{"status":"sha256:def"}"#.utf8) + [13, 10])
        #expect(try DockerClient.importedImageID(docker) == "sha256:def")
        let failed = EngineResponse(status: 200, body: Array(#"{"errorDetail":{"message":"bad tar"},"error":"bad tar"}"#.utf8))
        #expect(throws: DockerError.apiError(status: 200, message: "bad tar")) { try DockerClient.importedImageID(failed) }
    }
}

extension WireFormatTests {
    @Test func unexpectedAnswersAreOneLineDecodingErrors() {
        let error = #expect(throws: DockerError.self) {
            try ContainerSummary.list(decoding: Array(#"[{"Names":["/x"]}]"#.utf8))
        }
        #expect(error?.description == "unexpected answer from the Docker daemon for container list: Id is missing at [0]")
        let multiLine = DockerError.apiError(status: 500, message: "runc create failed:\nexec format error")
        #expect(multiLine.description == "Docker API error 500: runc create failed: exec format error")
    }
}
