/// One engine session of a hub, as the control plane records it.
public struct StreamSessionInfo: Sendable, Equatable {
    public var content: ContentKey
    public var engine: EngineEndpoint
    public var session: EngineSession

    /// The orchestrator's stream id: `"<key>|<playback_session_id>"`.
    public var streamID: String { "\(content.value)|\(session.playbackSessionID)" }
}

/// Hears when hubs start and end engine sessions, so the control plane can keep
/// its stream records; called on relay threads, so implementations hand the
/// work off and return at once.
public protocol StreamEventSink: Sendable {
    func streamStarted(_ stream: StreamSessionInfo)
    func streamEnded(_ stream: StreamSessionInfo, reason: String)
}
