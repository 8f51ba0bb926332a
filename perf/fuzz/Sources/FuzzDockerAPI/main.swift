import DockerEngine
import FuzzSupport

// One body read as each Docker (or podman) answer the client decodes: the
// container list, an inspect, an error body, and an image import's progress lines.
FuzzEntryPoint.run { input in
    let body = Array(input)
    _ = try? ContainerSummary.list(decoding: body)
    _ = try? ContainerDetails(decoding: body)
    let response = EngineResponse(status: 500, body: body)
    _ = response.errorMessage
    _ = response.errorCause
    _ = try? DockerClient.importedImageID(EngineResponse(status: 200, body: body))
}
