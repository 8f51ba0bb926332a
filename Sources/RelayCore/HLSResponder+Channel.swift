import Foundation

/// A channel's HLS timeline and the hub it appends from, as `RelayServer` keeps it per channel id.
struct HLSChannelState {
    var timeline: HLSChannelTimeline
    /// The playing source's hub, held so the next request sees how it ended
    /// (failed or closed) even after the registry let it go.
    var hub: Hub?
}

extension HLSResponder {
    /// `GET /ace/channel/{id}.m3u8`: judges the playing source with `SwitchPolicy`
    /// (moving to the next working one, reported, when it failed), counts the viewer
    /// on its hub as `/ace/manifest.m3u8` does, and answers the channel's playlist.
    func channelPlaylistRequested(_ channelID: String) -> Answer {
        guard let sources = server.channels?.sources(ofChannel: channelID) else { return unknownChannel(channelID, includeBody: true) }
        return server.hlsChannels.withLock { states in
            var state = states[channelID] ?? HLSChannelState(timeline: newTimeline(), hub: nil)
            defer { states[channelID] = state }
            return advance(&state, channelID, sources: sources)
        }
    }

    /// The channel's playlist once its hub has a segment; nil while it has none
    /// (a playlist waiting for the first segment asks again).
    func channelPlaylist(_ channelID: String, of hub: Hub) -> Answer? {
        server.hlsChannels.withLock { states in
            guard var state = states[channelID] else { return nil }
            defer { states[channelID] = state }
            if state.hub === hub {
                state.timeline.append(hub.segments.newest(configuration.hlsWindow, readable: hub.readableRange),
                                      content: hub.key, targetDuration: hub.hlsTargetDuration)
            }
            return state.timeline.playlist(window: configuration.hlsWindow).map { respond($0, includeBody: true) }
        }
    }

    /// `HEAD /ace/channel/{id}.m3u8`: the playlist's head, with no engine session.
    func channelPlaylistProbed(_ channelID: String) -> Answer {
        guard server.channels?.sources(ofChannel: channelID) != nil else { return unknownChannel(channelID, includeBody: false) }
        if let playlist = server.hlsChannels.withLock({ $0[channelID]?.timeline.playlist(window: configuration.hlsWindow) }) {
            return respond(playlist, includeBody: false)
        }
        return playlistProbed(nil)
    }

    /// Whether this viewer watches the channel's playing hub: a draining relay keeps serving it.
    func isWatchingChannel(_ channelID: String) -> Bool {
        server.hlsChannels.withLock { $0[channelID]?.hub?.audience.contains(viewer) } ?? false
    }

    private func newTimeline() -> HLSChannelTimeline {
        HLSChannelTimeline(firstSequence: UInt64(Date().timeIntervalSince1970),
                           policy: SwitchPolicy(failoverAfter: configuration.channelFailoverAfter,
                                                maxSwitchesPerMinute: configuration.channelMaxSwitchesPerMinute))
    }

    private func advance(_ state: inout HLSChannelState, _ channelID: String, sources: [ContentKey]) -> Answer {
        var left: (source: ContentKey, reason: ChannelSwitchReason)?
        if let source = state.timeline.source {
            let reason: ChannelSwitchReason?
            if let hub = state.hub {
                let seen = SwitchPolicy.Observation(phase: hub.phase, upstream: hub.upstreamCondition,
                                                    packets: hub.packetsReceived, failureCode: hub.failure?.code)
                if case .failed(let verdict) = state.timeline.policy.judge(seen, at: now) { reason = verdict } else { reason = nil }
            } else {
                reason = .hubClosed
            }
            if let reason {
                left = (source, reason)
                state.timeline.sourceFailed()
                state.hub = nil
                worker.logger.warning("channel source failed an HLS playlist; switching", metadata: [
                    "relay.channel": "\(channelID)", "relay.content": "\(source)", "relay.reason": "\(reason.rawValue)"])
                // A hub closes without failing only when idle or stopping: no fault of the source.
                if reason != .hubClosed { server.channels?.sourceFailed(source, ofChannel: channelID, reason: reason) }
            }
        }
        let key: ContentKey
        if let playing = state.timeline.source {
            key = playing
        } else {
            let candidates = sources.filter { $0 != left?.source && server.contentGate?.refusal(for: $0) == nil }
            guard let next = candidates.first, left == nil || state.timeline.policy.maySwitch(at: now) else {
                server.channelLedger.playing(channelID, source: nil)
                return .respond(HTTPResponse.error(status: 503, code: "no_working_source",
                                                   message: "no source of channel \(channelID) works now; retry later", retryAfter: 10,
                                                   extraHeaders: HLSResponder.errorHeaders))
            }
            if let left {
                state.timeline.policy.switched(at: now)
                server.channelLedger.switched(channelID, to: next, reason: left.reason)
            } else {
                server.channelLedger.playing(channelID, source: next)
            }
            key = next
        }
        let hub: Hub
        switch attach(key) {
        case .refused(let answer): return answer
        case .attached(let attached): hub = attached
        }
        if state.hub !== hub {
            state.timeline.play(key, hub: hub.id)
            state.timeline.policy.attached(packets: hub.packetsReceived, at: now)
            state.hub = hub
        }
        state.timeline.append(hub.segments.newest(configuration.hlsWindow, readable: hub.readableRange),
                              content: key, targetDuration: hub.hlsTargetDuration)
        guard let playlist = state.timeline.playlist(window: configuration.hlsWindow) else { return .waitForChannelSegments(hub, channel: channelID) }
        return respond(playlist, includeBody: true)
    }

    private func unknownChannel(_ channelID: String, includeBody: Bool) -> Answer {
        .respond(HTTPResponse.error(status: 404, code: "unknown_channel", message: "no channel with id \(channelID)",
                                    extraHeaders: HLSResponder.errorHeaders, includeBody: includeBody))
    }
}
