/// Playback responses: an initial burst, then the endless stream paced at the media's rate.
extension EngineSimulator {
    /// What a playback response does next.
    enum PlaybackStep {
        /// The session ended (stop, another pid, die): close without a terminator, like an engine.
        case ended
        /// A `cleanEOF` fault: end the response cleanly; the session lives on.
        case endResponse
        /// Nothing to send now (caught up, stalled or hung).
        case wait
        /// Send the stream up to `until`, with garbage injected at `garbage.at` if set.
        case send(until: Int64, garbage: (at: Int64, bytes: Int)?, caughtUp: Bool)
    }

    /// Streams a session on `connection` until the session ends, the client leaves, or a fault
    /// ends the response. A connection resumes where the session's last one stopped.
    func streamPlayback(sessionID: String, request: HTTPRequest, on connection: ClientConnection) -> Disposition {
        let now = monotonicNanoseconds()
        let opened = state.withLock { state -> (start: Int64, infohash: String)? in
            guard state.sessions[sessionID] != nil else { return nil }
            if state.sessions[sessionID]!.clockStart == nil { state.sessions[sessionID]!.clockStart = now }
            return (state.sessions[sessionID]!.deliveredPosition, state.sessions[sessionID]!.infohash)
        }
        guard let opened else {
            let response = Self.textResponse(404, "unknown playback session", keepAlive: request.keepAlive,
                                             headOnly: request.isHead)
            return connection.sendAll(response) && request.keepAlive ? .keepAlive : .close
        }
        // HTTP/1.0 has no chunked coding: the body then runs until the connection closes.
        let chunked = request.isHTTP11
        let keepAlive = chunked && request.keepAlive
        var fields = [("Cache-Control", "no-cache")]
        if chunked { fields.append(("Transfer-Encoding", "chunked")) }
        let head = HTTPResponse.head(status: 200, reason: "OK", contentType: "video/mp2t", bodyLength: nil,
                                     keepAlive: keepAlive, extraFields: fields)
        guard connection.sendAll(head) else { return .close }
        if request.isHead { return keepAlive ? .keepAlive : .close }

        // Buffers live for the response, not per send.
        var cursor = opened.start
        let sessionMedia = media(forInfohash: opened.infohash)
        var packets: [UInt8] = []
        var body: [UInt8] = []
        var frame: [UInt8] = []
        let capacity = Int(Self.maximumChunkBytes) + 2 * TransportPacket.size
        packets.reserveCapacity(capacity)
        body.reserveCapacity(capacity)
        frame.reserveCapacity(capacity + 16)

        while true {
            switch nextPlaybackStep(sessionID: sessionID, cursor: cursor, connection: connection) {
            case .ended:
                return .close
            case .endResponse:
                logger.debug("engine simulator ended a playback response", metadata: ["sim.session": "\(sessionID)"])
                guard chunked, connection.sendAll(HTTPResponse.lastChunk) else { return .close }
                return keepAlive ? .keepAlive : .close
            case .wait:
                if connection.peerHasGone(waitingMilliseconds: Self.playbackTickMilliseconds) { return .close }
            case let .send(until, garbage, caughtUp):
                body.removeAll(keepingCapacity: true)
                if let garbage {
                    appendStream(from: cursor, to: garbage.at, of: sessionMedia, into: &body, scratch: &packets)
                    Self.appendGarbage(count: garbage.bytes, to: &body)
                    appendStream(from: garbage.at, to: until, of: sessionMedia, into: &body, scratch: &packets)
                } else {
                    appendStream(from: cursor, to: until, of: sessionMedia, into: &body, scratch: &packets)
                }
                let sent: Bool
                if chunked {
                    frame.removeAll(keepingCapacity: true)
                    HTTPResponse.appendChunk(body, to: &frame)
                    sent = connection.sendAll(frame, shouldContinue: { self.hasSession(sessionID) })
                } else {
                    sent = connection.sendAll(body, shouldContinue: { self.hasSession(sessionID) })
                }
                guard sent else { return .close }
                let delivered = until - cursor
                state.withLock { state in
                    guard state.sessions[sessionID] != nil else { return }
                    state.sessions[sessionID]!.deliveredPosition = until
                    state.sessions[sessionID]!.bytesSent += delivered
                }
                cursor = until
                if caughtUp, connection.peerHasGone(waitingMilliseconds: Self.playbackTickMilliseconds) {
                    return .close
                }
            }
        }
    }

    private func hasSession(_ id: String) -> Bool {
        state.withLock { $0.sessions[id] != nil }
    }

    private func nextPlaybackStep(sessionID: String, cursor: Int64, connection: ClientConnection) -> PlaybackStep {
        if connection.aborted { return .ended }
        let now = monotonicNanoseconds()
        return state.withLock { state in
            guard var session = state.sessions[sessionID] else { return .ended }
            defer { state.sessions[sessionID] = session }
            if session.pendingCleanEOF {
                session.pendingCleanEOF = false
                return .endResponse
            }
            if state.faults.isHung(session.infohash) || state.faults.isStalled(session.infohash, at: now) {
                return .wait
            }
            let edge = liveEdge(of: session, at: now)
            guard edge > cursor else { return .wait }
            let until = min(edge, cursor + Self.maximumChunkBytes)
            var garbage: (at: Int64, bytes: Int)?
            if session.pendingGarbageBytes > 0 {
                // The middle of the packet the cursor is in, or of the next one: never a boundary.
                let size = Int64(TransportPacket.size)
                let middle = cursor / size * size + size / 2
                let at = middle >= cursor ? middle : middle + size
                if at < until {
                    garbage = (at, session.pendingGarbageBytes)
                    session.pendingGarbageBytes = 0
                }
            }
            return .send(until: until, garbage: garbage, caughtUp: until == edge)
        }
    }

    /// How much of the endless stream is due: the burst, plus the media's rate times the time
    /// since the session's playback first opened. Stalls delay delivery, not the edge.
    private func liveEdge(of session: PlaybackSession, at now: UInt64) -> Int64 {
        guard let start = session.clockStart else { return 0 }
        let elapsed = now > start ? Double(now - start) / 1_000_000_000 : 0
        return Int64((configuration.initialBurstSeconds + elapsed) * media(forInfohash: session.infohash).bytesPerSecond)
    }

    /// Appends stream bytes `from ..< to` (any alignment) to `body`.
    private func appendStream(from: Int64, to: Int64, of media: MediaLoop, into body: inout [UInt8], scratch: inout [UInt8]) {
        guard to > from else { return }
        let size = Int64(TransportPacket.size)
        let firstPacket = from / size
        let lastPacket = (to - 1) / size
        scratch.removeAll(keepingCapacity: true)
        media.render(packetsFrom: firstPacket, count: Int(lastPacket - firstPacket + 1), into: &scratch)
        let offset = Int(from - firstPacket * size)
        body.append(contentsOf: scratch[offset..<(offset + Int(to - from))])
    }

    /// Bytes that are not TS: a fixed pattern with no sync byte, so no reader can mistake it for a packet.
    private static func appendGarbage(count: Int, to body: inout [UInt8]) {
        for i in 0..<count {
            let byte = UInt8(truncatingIfNeeded: i &* 151 &+ 29)
            body.append(byte == TransportPacket.syncByte ? 0xB8 : byte)
        }
    }
}
