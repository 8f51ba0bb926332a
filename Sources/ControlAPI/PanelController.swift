import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /panel` (the dashboard's page, built into the binary), `GET /panel/snapshot`
/// (what the page polls when Server-Sent Events do not get through) and
/// `GET /events/live` (the Server-Sent Events themselves).
struct PanelController: APIController {
    let plane: ControlPlane

    func register(open: RouterGroup<APIContext>, protected: RouterGroup<APIContext>) {
        open.get("panel") { _, _ in PanelAssets.index.response }
        open.get("panel/index.html") { _, _ in PanelAssets.index.response }
        open.get("panel/panel.css") { _, _ in PanelAssets.stylesheet.response }
        open.get("panel/panel.js") { _, _ in PanelAssets.script.response }
        open.get("panel/snapshot") { _, _ in try await snapshot() }
        open.get("events/live") { _, _ in try liveEvents() }
    }

    func snapshot() async throws -> Response {
        let data = try await PanelSnapshot.build(plane: plane, live: plane.live).encoded()
        return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// An open `text/event-stream`: a `ready` comment at once, then the live
    /// updates' messages as they come. The response ends when the client goes
    /// (the next write fails; a snapshot comes every interval) or at shutdown.
    func liveEvents() throws -> Response {
        guard let live = plane.live else { throw APIError.notFound("live updates are not enabled") }
        let (id, messages) = live.addClient()
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache",
                                   HTTPField.Name("X-Accel-Buffering")!: "no"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            defer { live.remove(id) }
            // EventSource retries after `retry` ms when the connection drops (a restart).
            try await writer.write(ByteBuffer(string: "retry: 2000\n: connected\n\n"))
            for await message in messages {
                try await writer.write(ByteBuffer(string: message.wireText))
            }
            try await writer.finish(nil)
        })
    }
}

/// One file of the panel, as the build embedded it.
struct PanelAsset: Sendable {
    let bytes: [UInt8]
    let contentType: String

    var response: Response {
        Response(status: .ok, headers: [.contentType: contentType, .cacheControl: "no-cache"],
                 body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// The panel's files, from `Sources/ControlAPI/Panel/` (embedded by SwiftPM at build time).
enum PanelAssets {
    static let index = PanelAsset(bytes: PackageResources.index_html, contentType: "text/html; charset=utf-8")
    static let stylesheet = PanelAsset(bytes: PackageResources.panel_css, contentType: "text/css; charset=utf-8")
    static let script = PanelAsset(bytes: PackageResources.panel_js, contentType: "text/javascript; charset=utf-8")
}
