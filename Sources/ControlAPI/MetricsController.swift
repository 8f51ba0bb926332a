import Hummingbird
import NIOCore

/// `GET /metrics`: the Prometheus exposition, rendered at scrape time.
struct MetricsController: APIController {
    let plane: ControlPlane

    func register(open: RouterGroup<APIContext>, protected: RouterGroup<APIContext>) {
        open.get("metrics") { _, _ in try await metrics() }
    }

    func metrics() async throws -> Response {
        guard let exporter = plane.metrics else { throw APIError.notFound("metrics are not enabled") }
        let text = await exporter.render(plane: plane)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: text)))
    }
}
