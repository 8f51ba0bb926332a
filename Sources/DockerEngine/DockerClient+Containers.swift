import Foundation

extension DockerClient {
    /// Creates a container from `spec` and returns its id (`POST /containers/create`).
    ///
    /// Nothing is pulled: a missing image fails with `notFound`.
    /// - Parameter name: the container's name; nil lets the daemon invent one.
    /// - Throws: `notFound` (no such image), `conflict` (the name is in use), or any transport error.
    public func createContainer(name: String?, spec: ContainerSpec) async throws(DockerError) -> String {
        var request = EngineRequest(method: .post, path: "/containers/create", body: .json(spec.createBody()), timeout: requestTimeout)
        if let name { request.query = [("name", name)] }
        let response = try await send(request)
        try expect(response, 201, 200)
        return try decode(CreateResponse.self, from: response, what: "container create").Id
    }

    /// Starts a created or stopped container. Starting a running one succeeds.
    public func startContainer(id: String) async throws(DockerError) {
        let response = try await send(EngineRequest(method: .post, path: containerPath(id, "start"), timeout: requestTimeout))
        // 304: already running.
        try expect(response, 204, 304)
    }

    /// Stops a container: SIGTERM, then SIGKILL after `timeoutSeconds`. Stopping a stopped one succeeds.
    ///
    /// The call waits for the container to end, so its own time limit is the
    /// grace time plus `requestTimeout`.
    public func stopContainer(id: String, timeoutSeconds: Int = 10) async throws(DockerError) {
        let request = EngineRequest(
            method: .post, path: containerPath(id, "stop"), query: [("t", String(timeoutSeconds))],
            timeout: requestTimeout + .seconds(max(timeoutSeconds, 0)))
        let response = try await send(request)
        // 304: already stopped.
        try expect(response, 204, 304)
    }

    /// Removes a container. Without `force` a running container is a `conflict`;
    /// with it the daemon kills the container first.
    public func removeContainer(id: String, force: Bool = false) async throws(DockerError) {
        let request = EngineRequest(
            method: .delete, path: containerPath(id), query: [("force", force ? "true" : "false")], timeout: requestTimeout)
        try expect(try await send(request), 204, 200)
    }

    /// Everything about one container (`GET /containers/{id}/json`); `id` may also be a name.
    /// - Throws: `notFound` when there is no such container.
    public func inspectContainer(id: String) async throws(DockerError) -> ContainerDetails {
        let response = try await send(EngineRequest(method: .get, path: containerPath(id, "json"), timeout: requestTimeout))
        try expect(response, 200)
        return try ContainerDetails(decoding: response.body)
    }

    /// Containers carrying every one of `labels` (`GET /containers/json`).
    /// - Parameters:
    ///   - labels: each pair must match exactly; an empty value matches the key with any value.
    ///   - all: include containers that are not running.
    public func listContainers(labels: [String: String] = [:], all: Bool = false) async throws(DockerError) -> [ContainerSummary] {
        var query: [(name: String, value: String)] = [("all", all ? "true" : "false")]
        if !labels.isEmpty {
            query.append(("filters", Self.labelFilter(labels)))
        }
        let response = try await send(EngineRequest(method: .get, path: "/containers/json", query: query, timeout: requestTimeout))
        try expect(response, 200)
        return try ContainerSummary.list(decoding: response.body)
    }

    /// The `filters` value Docker expects for label matching: `{"label":["k=v","k2"]}`.
    static func labelFilter(_ labels: [String: String]) -> String {
        let terms = labels.sorted { $0.key < $1.key }.map { $0.value.isEmpty ? $0.key : "\($0.key)=\($0.value)" }
        let data = try? JSONEncoder().encode(["label": terms])
        return String(decoding: data ?? Data(), as: UTF8.self)
    }

    private func containerPath(_ id: String, _ action: String? = nil) -> String {
        let base = "/containers/" + EngineRequest.encodePathElement(id)
        return action.map { base + "/" + $0 } ?? base
    }
}

private struct CreateResponse: Decodable {
    var Id: String
}
