/// Decides the answers to the stream port's HLS requests: a content's live
/// playlist, and its segments as byte ranges of the hub's history.
///
/// It decides and counts; `ClientConnection` carries the answer out, sending a
/// segment's range with `sendfile` through the same path as a TS player, so a
/// segment is never copied. Runs on the requesting connection's loop.
struct HLSResponder {
    /// What the connection does next.
    enum Answer {
        /// A complete response (playlist, error); the connection closes after it.
        case respond([UInt8])
        /// The hub has no segment yet: ask `playlist(of:)` again until the wait runs out.
        case waitForSegments(Hub)
        /// The channel's timeline has no segment yet: ask `channelPlaylist(_:of:)` again until the wait runs out.
        case waitForChannelSegments(Hub, channel: String)
        /// `head`, then the history bytes of `range`.
        case segment(head: [UInt8], hub: Hub, range: Range<UInt64>)
    }

    unowned let worker: Worker
    /// The requesting player, as `HLSAudience` counts it.
    let viewer: String
    /// The player's host, which `--max-contents-per-address` counts by.
    let address: String

    var server: RelayServer { worker.server }
    var configuration: RelayConfiguration { server.configuration }
    var now: Double { worker.loop.now }
    private func counts(_ hub: Hub) -> CounterScope { CounterScope(hub: hub.counters, worker: worker.counters) }

    /// `GET /ace/manifest.m3u8`: counts the viewer (opening the hub if needed) and
    /// answers its playlist, or waits for the first segment of a starting hub.
    func playlistRequested(_ key: ContentKey) -> Answer {
        switch attach(key) {
        case .refused(let answer): return answer
        case .attached(let hub): return playlist(of: hub) ?? .waitForSegments(hub)
        }
    }

    /// A viewer attached to its hub, or the response that refused it.
    enum Attachment {
        case attached(Hub)
        case refused(Answer)
    }

    /// Counts the viewer on `key`'s hub, opening and starting it if needed: the
    /// accounting every HLS playlist request goes through, content or channel.
    func attach(_ key: ContentKey) -> Attachment {
        let attached: (hub: Hub, created: Bool, newViewer: Bool)
        do {
            attached = try server.registry.attachViewer(key, viewer: viewer, from: address, at: now) { try Hub(key: key, owner: worker) }
        } catch let quota as AddressQuotaExceeded {
            return .refused(.respond(HTTPResponse.error(status: 429, code: "too_many_contents",
                                               message: "this address has \(quota.limit) streams open already (--max-contents-per-address); close one or retry later",
                                               retryAfter: Int(configuration.gracePeriod.rounded(.up)) + 1, extraHeaders: HLSResponder.errorHeaders)))
        } catch let full as HistoryBudgetExhausted {
            return .refused(.respond(HTTPResponse.error(status: 503, code: "history_budget_full", message: full.message, retryAfter: 10,
                                                                        extraHeaders: HLSResponder.errorHeaders)))
        } catch {
            return .refused(.respond(HTTPResponse.error(status: 503, code: "relay_error", message: "cannot open a stream buffer: \(error)",
                                                                        retryAfter: 10)))
        }
        let hub = attached.hub
        counts(hub).add(.hlsPlaylistRequests)
        if attached.newViewer {
            counts(hub).add(.playersServed)
            server.events.publish(.playerJoined(hub.id))
        }
        if attached.created { hub.start() }
        return .attached(hub)
    }

    /// Whether this viewer is already one of `key`'s HLS players: a draining relay
    /// keeps serving it, as it keeps streaming to connected TS players.
    func isWatching(_ key: ContentKey) -> Bool {
        server.registry.hub(for: key)?.audience.contains(viewer) ?? false
    }

    /// The playlist of `hub`, or its failure; nil while it has no segment yet.
    func playlist(of hub: Hub, includeBody: Bool = true) -> Answer? {
        switch hub.phase {
        case .failed, .closed:
            let failure = hub.failure
            return .respond(HTTPResponse.error(
                status: failure?.status ?? 503, code: failure?.code ?? "stream_closed",
                message: failure?.message ?? "the stream closed before it started", retryAfter: failure?.retryAfter ?? 5,
                extraHeaders: HLSResponder.errorHeaders))
        case .starting, .streaming:
            let segments = hub.segments.newest(configuration.hlsWindow, readable: hub.readableRange)
            guard !segments.isEmpty else { return nil }
            return respond(HLSPlaylist(segments: segments, content: hub.key, minimumTargetDuration: hub.hlsTargetDuration), includeBody: includeBody)
        }
    }

    /// A playlist's response, with the live playlist's headers.
    func respond(_ playlist: HLSPlaylist, includeBody: Bool) -> Answer {
        .respond(HTTPResponse.make(status: 200, contentType: HLSResponder.playlistType, body: Array(playlist.text.utf8),
                                   extraHeaders: HLSResponder.playlistHeaders, includeBody: includeBody))
    }

    /// The answer once the wait for a first segment ran out.
    func noSegmentYet(_ hub: Hub) -> Answer {
        .respond(HTTPResponse.error(status: 503, code: "stream_starting",
                                    message: "the stream has no HLS segment yet; retry in a few seconds", retryAfter: 2,
                                    extraHeaders: HLSResponder.errorHeaders))
    }

    /// `HEAD /ace/manifest.m3u8`: the playlist's head, with no engine session (playlist checkers probe this way).
    /// A nil `key` answers the bare head (a channel with no segment yet).
    func playlistProbed(_ key: ContentKey?) -> Answer {
        if let key, let hub = server.registry.hub(for: key), case .respond(let bytes)? = playlist(of: hub, includeBody: false) {
            return .respond(bytes)
        }
        var head = "HTTP/1.1 200 OK\r\nContent-Type: \(HLSResponder.playlistType)\r\n"
        for (name, value) in HLSResponder.playlistHeaders { head += "\(name): \(value)\r\n" }
        head += "Connection: close\r\nServer: acerelay\r\n\r\n"
        return .respond(Array(head.utf8))
    }

    /// `GET`/`HEAD /ace/hls/...`: the segment's head and range, or 404 when the
    /// content has no hub, the number was never issued or its bytes are gone.
    func segmentRequested(_ key: ContentKey, sequence: UInt64, includeBody: Bool) -> Answer {
        guard let hub = server.registry.hub(for: key) else {
            return notFound("no open stream for \(key); ask for /ace/manifest.m3u8?id=<content id> first", includeBody: includeBody)
        }
        counts(hub).add(.hlsSegmentRequests)
        guard let segment = hub.segments.segment(sequence, readable: hub.readableRange) else {
            let why = sequence >= hub.segments.nextSequence ? "is not issued yet" : "is no longer held"
            return notFound("segment \(sequence) of \(key) \(why); reload the playlist", includeBody: includeBody)
        }
        if server.registry.touchViewer(of: hub, viewer: viewer, at: now) {
            counts(hub).add(.playersServed)
            server.events.publish(.playerJoined(hub.id))
        }
        var head = "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nContent-Length: \(segment.range.count)\r\n"
        head += "Cache-Control: max-age=60\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\nServer: acerelay\r\n\r\n"
        return .segment(head: Array(head.utf8), hub: hub, range: includeBody ? segment.range : segment.range.lowerBound..<segment.range.lowerBound)
    }

    private func notFound(_ message: String, includeBody: Bool) -> Answer {
        .respond(HTTPResponse.error(status: 404, code: "segment_not_found", message: message,
                                    extraHeaders: HLSResponder.errorHeaders, includeBody: includeBody))
    }

    static let playlistType = "application/vnd.apple.mpegurl"
    /// A live playlist changes every segment: caches must revalidate each time.
    static let playlistHeaders = [("Cache-Control", "no-cache"), ("Access-Control-Allow-Origin", "*")]
    static let errorHeaders = [("Cache-Control", "no-store"), ("Access-Control-Allow-Origin", "*")]
}
