import EngineFleet
import Streams
import Foundation
import Hummingbird

/// (key) `POST /provision/acestream` (also `/provision`) and `DELETE /containers/{id}`.
struct ProvisioningController: APIController {
    let plane: ControlPlane

    func register(open: RouterGroup<APIContext>, protected: RouterGroup<APIContext>) {
        protected.post("provision/acestream") { request, _ in try await provision(request) }
        protected.post("provision") { request, _ in try await provision(request) }
        protected.delete("containers/:id") { _, context in try await removeContainer(id: context.parameters.require("id")) }
    }

    func provision(_ request: Request) async throws -> Response {
        guard let provisioner = plane.provisioner else {
            throw APIError(.serviceUnavailable, .provisioning(ProvisioningError(
                code: "general_error", message: "no Docker daemon configured: set DOCKER_HOST to provision engines",
                recoveryETASeconds: 0, canRetry: false, shouldWait: false)))
        }
        let body = try await request.decodeJSON(ProvisionBody.self)
        do {
            let engine = try await provisioner.provision(labels: body.labels ?? [:], environment: body.env ?? [:],
                                                         hostPort: body.hostPort, image: body.image)
            return .rawJSON(["container_id": engine.containerID, "container_name": engine.containerName,
                             "host_http_port": engine.hostHTTPPort, "container_http_port": engine.containerHTTPPort,
                             "container_https_port": engine.containerHTTPSPort.map { $0 as Any } ?? NSNull()])
        } catch {
            throw APIError.provisioning(error)
        }
    }

    func removeContainer(id: String) async throws -> Response {
        guard let provisioner = plane.provisioner else {
            throw APIError.unavailable("no Docker daemon configured: set DOCKER_HOST to manage containers")
        }
        guard plane.fleet.engine(id: id)?.managed ?? true else {
            throw APIError.badRequest("\(id) is a static engine, not a container acerelay manages")
        }
        do {
            try await provisioner.remove(containerID: id, reason: "removed through the API")
        } catch {
            throw APIError.unavailable(error.description)
        }
        return .json(["message": "Container stopped and removed", "container_id": id])
    }
}
