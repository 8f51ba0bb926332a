import Hummingbird

/// `GET`/`HEAD /ace/getstream`: a 307 to the same request on the stream port,
/// for playlists that point at the orchestrator's port.
struct AceRedirectController: APIController {
    let plane: ControlPlane

    func register(open: RouterGroup<APIContext>, protected: RouterGroup<APIContext>) {
        open.get("ace/getstream") { request, _ in redirect(request) }
        open.head("ace/getstream") { request, _ in redirect(request) }
    }

    func redirect(_ request: Request) -> Response {
        let host = request.head.authority.map { authority -> String in
            if authority.hasPrefix("["), let end = authority.firstIndex(of: "]") { return String(authority[...end]) }
            return authority.split(separator: ":").first.map(String.init) ?? authority
        } ?? "127.0.0.1"
        // The stream port serves /ace/getstream only, whatever prefix reached us.
        let query = request.uri.query.map { "?\($0)" } ?? ""
        return Response(status: .temporaryRedirect, headers: [.location: "http://\(host):\(plane.streamPort())/ace/getstream\(query)"])
    }
}
