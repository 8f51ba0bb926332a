/// An AceStream engine the relay can open playback sessions on.
public struct EngineEndpoint: Hashable, Sendable, CustomStringConvertible {
    /// Stable identity: a container id for managed engines, the URL for static ones.
    public let id: String
    /// `http://host:port` of the engine's HTTP API, without a trailing slash.
    public let baseURL: String

    public init(id: String, baseURL: String) {
        self.id = id
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
    }

    public var description: String { baseURL }
}

/// Why no engine could take a content now; becomes a 503 with `Retry-After`.
public struct EngineUnavailable: Error, Sendable, Equatable {
    /// A machine-readable reason, e.g. `no_engine`, `max_capacity`, `circuit_breaker`.
    public let code: String
    /// One line for the player's error body and the log.
    public let message: String
    /// Seconds after which asking again may succeed.
    public let retryAfterSeconds: Int

    public init(code: String, message: String, retryAfterSeconds: Int) {
        self.code = code
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }
}

/// The one interface through which hubs get engines: a static list
/// (`StaticEngineSelector`) or the control plane's fleet (provisioning, health, load).
///
/// Every call may come from any relay loop; implementations are thread-safe
/// and never block a loop (a slow answer goes through `completion` later).
public protocol EngineSelector: Sendable {
    /// Reserves an engine for `content`, skipping `excluded` ones (engines that
    /// already failed this hub). `completion` runs exactly once, on any thread.
    /// The reservation counts against the engine's load until released, so a
    /// burst of new contents cannot overbook one engine.
    func reserveEngine(
        for content: ContentKey,
        excluding excluded: Set<EngineEndpoint>,
        completion: @escaping @Sendable (Result<EngineEndpoint, EngineUnavailable>) -> Void
    )

    /// The hub's session on `engine` is streaming.
    func engineStarted(_ engine: EngineEndpoint, for content: ContentKey)

    /// The hub stopped using `engine` for `content`; its reservation ends.
    func releaseEngine(_ engine: EngineEndpoint, for content: ContentKey)

    /// `engine` failed to start or keep a session (no answer, error, no data).
    func engineFailed(_ engine: EngineEndpoint, reason: String)

    /// Reserves an engine for a probe, at once or not at all: only when, after it,
    /// a slot is still free for a player. Never waits, never asks for provisioning.
    func reserveSpareEngine(for content: ContentKey, excluding excluded: Set<EngineEndpoint>) -> EngineEndpoint?

    /// Whether `reserveEngine` would find an engine with room now, without waiting.
    func hasFreeSlot(excluding excluded: Set<EngineEndpoint>) -> Bool
}

extension EngineSelector {
    /// A selector that cannot tell its spare capacity gives probes none.
    public func reserveSpareEngine(for content: ContentKey, excluding excluded: Set<EngineEndpoint>) -> EngineEndpoint? { nil }

    /// A selector that cannot tell assumes room, so players never wait on probes for it.
    public func hasFreeSlot(excluding excluded: Set<EngineEndpoint>) -> Bool { true }
}
