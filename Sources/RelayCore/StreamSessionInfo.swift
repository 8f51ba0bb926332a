/// One engine session of a hub, as the control plane records it.
public struct StreamSessionInfo: Sendable, Equatable {
    public var content: ContentKey
    public var engine: EngineEndpoint
    public var session: EngineSession

    /// The orchestrator's stream id: `"<key>|<playback_session_id>"`.
    public var streamID: String { "\(content.value)|\(session.playbackSessionID)" }
}
