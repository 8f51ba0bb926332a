import Clocks
import Foundation
import Logging
import RelayCore
import Store
import Locking

/// The orchestrator's loop-detection settings, with its JSON names.
public struct LoopDetectionConfig: Codable, Sendable, Equatable {
    public var enabled: Bool
    public var thresholdSeconds: Int
    public var checkIntervalSeconds: Int
    /// How long a looping content stays refused; 0 keeps it until cleared.
    public var retentionMinutes: Int

    public init(enabled: Bool = false, thresholdSeconds: Int = 3_600, checkIntervalSeconds: Int = 10, retentionMinutes: Int = 0) {
        self.enabled = enabled
        self.thresholdSeconds = thresholdSeconds
        self.checkIntervalSeconds = checkIntervalSeconds
        self.retentionMinutes = retentionMinutes
    }

    enum CodingKeys: String, CodingKey {
        case enabled, thresholdSeconds = "threshold_seconds", checkIntervalSeconds = "check_interval_seconds"
        case retentionMinutes = "retention_minutes"
    }
}

/// Finds broadcasts that loop: the swarm replays an old window when the
/// broadcaster stops, so the engine's live edge (`livepos.live_last`) goes
/// stale, or stops moving while no new data arrives. A looping content's
/// session is stopped, its players are closed, and new players are refused
/// (422, `stream_looping`) until the entry expires or is cleared.
public final class LoopDetector: ContentGate {
    private struct Watch {
        var liveLast: Int64
        var downloaded: Int64?
        var since: Date
    }

    private struct State {
        var config: LoopDetectionConfig
        /// Looping content keys (the 40-hex value) and when they were found.
        var looping: [String: Date] = [:]
        var watches: [String: Watch] = [:]
        var detections: UInt64 = 0
        /// The latest sample of every started stream, by stream id, as the stats collector pushed it.
        var samples: [String: (stream: StreamRecord, sample: StatSample)] = [:]
    }

    /// Timestamps outside 2020–2050 are engine noise, not a live edge.
    static let plausible: ClosedRange<Int64> = 1_577_836_800...2_524_608_000

    private let state: Locked<State>
    private let store: Store
    private let clock: any WallClock
    private let logger: Logger
    private let closeContent: @Sendable (ContentKey, ContentRefusal) -> Void
    private let stopExternal: @Sendable (StreamRecord) async -> Void

    /// - Parameters:
    ///   - stopExternal: stops a stream another proxy reported (its engine gets
    ///     `command_url?method=stop`, as the orchestrator sends); the relay does
    ///     not own that session, so closing a hub would leave it playing.
    ///   - closeContent: stops the content's session and closes its players (the relay's `closeHub`).
    public init(store: Store, config: LoopDetectionConfig, clock: any WallClock = SystemClock(), logger: Logger,
                stopExternal: @escaping @Sendable (StreamRecord) async -> Void,
                closeContent: @escaping @Sendable (ContentKey, ContentRefusal) -> Void) {
        state = Locked(State(config: config))
        self.store = store
        self.clock = clock
        self.logger = logger
        self.stopExternal = stopExternal
        self.closeContent = closeContent
    }

    /// Restores settings changed through the API and the looping list from the store.
    public func load() async {
        do {
            if let saved = try await store.setting("stream_loop_detection", as: LoopDetectionConfig.self) {
                state.withLock { $0.config = saved }
            }
            if let looping = try await store.setting("looping_streams", as: [String: Date].self) {
                state.withLock { $0.looping = looping }
            }
        } catch {
            logger.warning("cannot read loop detection state", metadata: ["loop.reason": "\(error)"])
        }
    }

    public var config: LoopDetectionConfig { state.withLock { $0.config } }

    /// Looping broadcasts found since start (for metrics).
    public var detections: UInt64 { state.withLock { $0.detections } }

    /// Applies new settings at once and keeps them across restarts.
    public func update(_ config: LoopDetectionConfig) async throws {
        state.withLock { $0.config = config }
        try await store.setSetting("stream_loop_detection", to: config)
    }

    // MARK: The looping list

    /// Looping contents that have not expired, with when they were found.
    public var looping: [String: Date] {
        let now = clock.now
        return state.withLock { state in
            state.looping = state.looping.filter { !Self.expired($0.value, retention: state.config.retentionMinutes, now: now) }
            return state.looping
        }
    }

    public func remove(_ id: String) async -> Bool {
        let removed = state.withLock { $0.looping.removeValue(forKey: id.lowercased()) != nil }
        if removed { await persistLooping() }
        return removed
    }

    public func clear() async {
        state.withLock { $0.looping.removeAll() }
        await persistLooping()
    }

    private static func expired(_ found: Date, retention minutes: Int, now: Date) -> Bool {
        minutes > 0 && now.timeIntervalSince(found) >= Double(minutes) * 60
    }

    public func refusal(for content: ContentKey) -> ContentRefusal? {
        let now = clock.now
        let found: Date? = state.withLock { state in
            guard let found = state.looping[content.value] else { return nil }
            if Self.expired(found, retention: state.config.retentionMinutes, now: now) {
                state.looping[content.value] = nil
                return nil
            }
            return found
        }
        guard let found else { return nil }
        return ContentRefusal(status: 422, code: "stream_looping",
                              message: "content \(content.value) is looping (its live edge stopped advancing; found \(ISO8601DateFormatter().string(from: found))); it is refused until it expires or is cleared")
    }

    // MARK: Samples, from the stats collector

    /// The newest sample of a started stream (the stats collector calls this after each poll).
    public func observe(stream: StreamRecord, sample: StatSample) {
        state.withLock { $0.samples[stream.id] = (stream, sample) }
    }

    /// The stream ended: its samples no longer say anything.
    public func streamEnded(id: String) {
        state.withLock { state in
            state.samples[id] = nil
            state.watches[id] = nil
        }
    }

    // MARK: Checking

    /// One pass over the started streams' latest samples, from memory.
    public func check() async {
        let config = self.config
        guard config.enabled else { return }
        let observed = state.withLock { $0.samples }
        let streams = observed.values.map { $0.stream }.sorted { $0.id < $1.id }
        let latest = observed.mapValues { $0.sample }
        let now = clock.now
        var found: [(StreamRecord, String)] = []
        state.withLock { state in
            state.watches = state.watches.filter { id, _ in streams.contains { $0.id == id } }
            for stream in streams {
                guard let sample = latest[stream.id], let liveLast = sample.livepos?.liveLast, Self.plausible.contains(liveLast) else { continue }
                let age = Int64(now.timeIntervalSince1970) - liveLast
                if age > Int64(config.thresholdSeconds) {
                    found.append((stream, "live edge is \(age) s old"))
                    continue
                }
                // Frozen: the live edge and the bytes downloaded both stand still.
                if let watch = state.watches[stream.id], watch.liveLast == liveLast, watch.downloaded == sample.downloaded {
                    if now.timeIntervalSince(watch.since) > Double(config.thresholdSeconds) {
                        found.append((stream, "live edge frozen for \(Int(now.timeIntervalSince(watch.since))) s with no new data"))
                    }
                } else {
                    state.watches[stream.id] = Watch(liveLast: liveLast, downloaded: sample.downloaded, since: now)
                }
            }
        }
        for (stream, why) in found { await markLooping(stream, why: why, at: now) }
    }

    private func markLooping(_ stream: StreamRecord, why: String, at now: Date) async {
        let key = stream.contentKey
        state.withLock { state in
            state.looping[stream.key.lowercased()] = now
            state.watches[stream.id] = nil
            state.samples[stream.id] = nil
            state.detections += 1
        }
        logger.warning("looping broadcast: stopping it", metadata: ["loop.content": "\(stream.key)", "loop.reason": "\(why)"])
        if let key, let refusal = refusal(for: key) { closeContent(key, refusal) }
        if stream.origin == .external { await stopExternal(stream) }
        await persistLooping()
        do {
            _ = try await store.endStream(id: stream.id, reason: "looping: \(why)")
            try await store.record(EventRecord(kind: "stream_looping", message: "\(stream.key): \(why)", containerID: stream.containerID, streamID: stream.id))
        } catch {
            logger.warning("cannot record a looping stream", metadata: ["loop.reason": "\(error)"])
        }
    }

    private func persistLooping() async {
        do {
            try await store.setSetting("looping_streams", to: state.withLock { $0.looping })
        } catch {
            logger.warning("cannot store the looping list", metadata: ["loop.reason": "\(error)"])
        }
    }
}
