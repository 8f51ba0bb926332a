/// Why a content is refused before any engine session is opened.
public struct ContentRefusal: Sendable, Equatable {
    /// HTTP status for the player (422 for a looping broadcast, as the orchestrator answered).
    public var status: Int
    /// Machine-readable code for the JSON body, e.g. `stream_looping`.
    public var code: String
    public var message: String

    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }
}

/// Asked for every new player before its content gets a hub; the control plane
/// implements it (loop detection). Called on relay threads: answer from memory,
/// without blocking.
public protocol ContentGate: Sendable {
    func refusal(for content: ContentKey) -> ContentRefusal?
}
