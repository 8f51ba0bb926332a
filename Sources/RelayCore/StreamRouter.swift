/// What a request on the stream port asks for, decided from its head alone.
enum StreamRoute: Equatable {
    /// `GET /ace/getstream`: attach a player to the content's hub.
    case play(ContentKey)
    /// `HEAD /ace/getstream`: answer as a stream would, without an engine session
    /// (playlist checkers probe this way).
    case probeStream
    /// `/ace/manifest.m3u8`: the content's live HLS playlist; HEAD answers without a body.
    case hlsPlaylist(ContentKey, includeBody: Bool)
    /// `/ace/hls/<kind>/<content>/<sequence>.ts`: one HLS segment of the content's hub.
    case hlsSegment(ContentKey, sequence: UInt64, includeBody: Bool)
    /// `/ace/channel/{id}`: play a channel, failing over between its sources; HEAD answers as a stream would.
    case playChannel(String, includeBody: Bool)
    /// `/ace/channel/{id}.m3u8`: the channel's live HLS playlist across its sources; HEAD answers without a body.
    case hlsChannelPlaylist(String, includeBody: Bool)
    /// `/ace/status`: the relay's status as JSON.
    case status(includeBody: Bool)
    /// `/healthz`: 200 while serving, 503 once draining or stopping (load balancers' check).
    case health(includeBody: Bool)
    /// A fixed error response.
    case refuse(status: Int, code: String, message: String, includeBody: Bool, allow: Bool)
}

/// The stream port's paths, each with the handler that turns a request head into
/// a route. New paths (an HLS manifest, a channel, a health check) are entries
/// here; `ClientConnection` only carries out the route.
struct StreamRouter {
    /// Turns the head of a request for this path into a route; `isHead` for HEAD.
    typealias Handler = @Sendable (_ head: HTTPRequestHead, _ isHead: Bool) -> StreamRoute

    private let handlers: [String: Handler]
    /// Paths that carry values (`/ace/hls/...`), tried in order after the exact ones.
    private let prefixHandlers: [(prefix: String, handler: Handler)]

    init(_ handlers: [String: Handler], prefixes: [(prefix: String, handler: Handler)] = []) {
        self.handlers = handlers
        prefixHandlers = prefixes
    }

    /// The paths acerelay serves on the stream port today.
    static let standard = StreamRouter([
        "/ace/getstream": { head, isHead in
            switch StreamRequest.parse(head) {
            case .failure(let problem):
                return .refuse(status: 400, code: "bad_content_id", message: problem.message, includeBody: !isHead, allow: false)
            case .success(let key):
                return isHead ? .probeStream : .play(key)
            }
        },
        "/ace/manifest.m3u8": { head, isHead in
            switch StreamRequest.parse(head) {
            case .failure(let problem):
                return .refuse(status: 400, code: "bad_content_id", message: problem.message, includeBody: !isHead, allow: false)
            case .success(let key):
                return .hlsPlaylist(key, includeBody: !isHead)
            }
        },
        "/ace/status": { _, isHead in .status(includeBody: !isHead) },
        "/healthz": { _, isHead in .health(includeBody: !isHead) },
    ], prefixes: [
        (HLSSegmentPath.prefix, { @Sendable head, isHead in
            guard let (key, sequence) = HLSSegmentPath.parse(head.path) else {
                return .refuse(status: 404, code: "not_found", message: "no such segment path: \(head.path); segments are /ace/hls/id/<content id>/<n>.ts",
                               includeBody: !isHead, allow: false)
            }
            return .hlsSegment(key, sequence: sequence, includeBody: !isHead)
        }),
    ])

    static let channelPrefix = "/ace/channel/"

    /// A channel id is a slug: lower-case letters, digits and dashes, played as
    /// TS, or with `.m3u8` after it as HLS. Anything else under the prefix is not a channel.
    static func channel(_ path: String, isHead: Bool) -> StreamRoute {
        let isHLS = path.hasSuffix(".m3u8")
        let id = isHLS ? String(path.dropLast(".m3u8".count)) : path
        let valid = !id.isEmpty && id.utf8.count <= 200 && id.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
        guard valid else {
            return .refuse(status: 404, code: "not_found", message: "no such channel path: \(StreamRouter.channelPrefix)\(path)",
                           includeBody: !isHead, allow: false)
        }
        return isHLS ? .hlsChannelPlaylist(id, includeBody: !isHead) : .playChannel(id, includeBody: !isHead)
    }

    func route(_ head: HTTPRequestHead) -> StreamRoute {
        let isHead = head.method == "HEAD"
        guard head.method == "GET" || isHead else {
            return .refuse(status: 405, code: "method_not_allowed", message: "only GET and HEAD are supported", includeBody: true, allow: true)
        }
        var path = head.path
        if path.count > 1, path.hasSuffix("/") { path.removeLast() }
        if let (_, handler) = prefixHandlers.first(where: { path.hasPrefix($0.prefix) }) {
            return handler(head, isHead)
        }
        if path.hasPrefix(StreamRouter.channelPrefix) {
            return StreamRouter.channel(String(path.dropFirst(StreamRouter.channelPrefix.count)), isHead: isHead)
        }
        guard let handler = handlers[path] else {
            return .refuse(status: 404, code: "not_found", message: "no such path: \(path); players use /ace/getstream?id=<content id>",
                           includeBody: !isHead, allow: false)
        }
        return handler(head, isHead)
    }
}
