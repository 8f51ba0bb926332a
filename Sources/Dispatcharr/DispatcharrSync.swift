import Foundation
import Logging
import Locking

/// Keeps acerelay's view of Dispatcharr's channels and writes back what acerelay
/// measured: stream orders and `stream_stats`.
///
/// `syncOnce()` reads channels, groups and streams and replaces `managedChannels`;
/// `run(every:)` does that every `DISPATCHARR_SYNC_INTERVAL_S`. `pushOrder` and
/// `pushFacts` never wait for Dispatcharr: they plan, queue and return. One writer
/// task sends the queue; a write that fails in a retryable way (Dispatcharr down,
/// slow, 5xx, throttled) is tried again after a delay that doubles up to
/// `RetryPolicy.maxDelay`, at most `RetryPolicy.maxAttempts` times, without holding up
/// other writes. A newer push for the same channel or stream replaces a queued one.
/// Before a channel's order is written the channel is read again, so a stream added in
/// Dispatcharr since the last sync is never unlinked. With `reorder` off nothing is
/// written: each planned write is logged and kept in `plannedWrites`.
public final class DispatcharrSync: Sendable {
    /// How failed writes are retried.
    public struct RetryPolicy: Sendable {
        /// The wait before the first retry; each further retry waits twice as long.
        public var initialDelay: Duration
        /// The longest wait between two attempts.
        public var maxDelay: Duration
        /// Attempts per write, the first included.
        public var maxAttempts: Int

        /// A policy as given; defaults 2 s, doubling to 60 s, 8 attempts (about 4 minutes).
        public init(initialDelay: Duration = .seconds(2), maxDelay: Duration = .seconds(60), maxAttempts: Int = 8) {
            self.initialDelay = initialDelay
            self.maxDelay = maxDelay
            self.maxAttempts = max(1, maxAttempts)
        }

        /// The wait after failed attempt number `attempt` (1 for the first).
        public func delay(afterAttempt attempt: Int) -> Duration {
            var delay = initialDelay
            for _ in 1..<max(1, attempt) where delay < maxDelay { delay *= 2 }
            return min(delay, maxDelay)
        }
    }

    /// A write to Dispatcharr, as planned.
    public enum Write: Sendable, Equatable {
        /// `PATCH /api/channels/channels/{id}/ {"streams":[...]}`.
        case channelStreams(channelID: Int, streamIDs: [Int])
        /// `stream_stats` members merged into the stream's current value.
        case streamStats(streamID: Int, fields: [String: JSONValue])
    }

    /// What a push did.
    public enum PushOutcome: Sendable, Equatable {
        /// Queued for the writer.
        case queued
        /// Nothing to write: the order or the facts are what Dispatcharr already has.
        case unchanged
        /// `reorder` is off: logged and kept in `plannedWrites`, not sent.
        case recorded
        /// The channel or content is not among the managed channels.
        case unknown
    }

    /// The client the sync talks through (its `counts` are the request metrics).
    public let client: DispatcharrClient
    /// The settings the sync follows (groups, interval, reorder).
    public let configuration: DispatcharrConfiguration

    private let logger: Logger
    private let retry: RetryPolicy
    private let state = Locked(State())
    private static let recentLimit = 100

    private enum WriteKey: Hashable {
        case channel(Int)
        case stream(Int)
    }

    /// A queued write: for a channel, the ranking to apply (planned again at write time).
    private struct Pending {
        var write: Write
        var ranked: [String] = []
        var failed: [String] = []
        var attempts = 0
        var notBefore: ContinuousClock.Instant
    }

    private struct State {
        var channels: [ManagedChannel] = []
        var reachable = false
        var lastSyncAt: Date?
        var lastError: String?
        var writesDone = 0
        var writesFailed = 0
        /// Queued writes by key, and the order they were first queued in.
        var pending: [WriteKey: Pending] = [:]
        var queue: [WriteKey] = []
        /// Writes being sent (a stopped writer may still finish one while a new one runs).
        var inFlight = 0
        var writer: Task<Void, Never>?
        /// Which writer owns the queue; `stop()` moves it on.
        var writerGeneration = 0
        /// The writer's wait for the next due retry, cancelled by a push so it looks again.
        var sleeper: Task<Void, Never>?
        /// The `stream_stats` fields last written (or recorded) per stream.
        var writtenFacts: [Int: [String: JSONValue]] = [:]
        var recent: [Write] = []
        var idleWaiters: [CheckedContinuation<Void, Never>] = []

        var pendingCount: Int { pending.count + inFlight }
    }

    /// A sync for `configuration` through `client`; nothing happens until a sync or a push.
    public init(client: DispatcharrClient, configuration: DispatcharrConfiguration, logger: Logger,
                retry: RetryPolicy = RetryPolicy()) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
        self.retry = retry
    }

    // MARK: - Reading

    /// The managed channels as of the last sync, with the orders written since.
    public var managedChannels: [ManagedChannel] {
        state.withLock { $0.channels }
    }

    /// The state for `/orchestrator/status`.
    public var status: DispatcharrStatus {
        state.withLock { state in
            DispatcharrStatus(configured: true, reachable: state.reachable, lastSyncAt: state.lastSyncAt,
                              lastError: state.lastError, managedChannels: state.channels.count,
                              pendingWrites: state.pendingCount, reorder: configuration.reorder,
                              writesDone: state.writesDone, writesFailed: state.writesFailed)
        }
    }

    /// The latest writes decided (sent, or with `reorder` off only recorded), oldest first, at most 100.
    public var plannedWrites: [Write] {
        state.withLock { $0.recent }
    }

    /// Reads groups, channels and their streams, and replaces `managedChannels`.
    @discardableResult
    public func syncOnce() async throws(DispatcharrError) -> [ManagedChannel] {
        do throws(DispatcharrError) {
            let groups = try await client.groups()
            let channels = try await client.channels()
            let wanted = Set(configuration.channelGroups.map { $0.lowercased() })
            let groupIDs = Set(groups.filter { wanted.contains($0.name.lowercased()) }.map(\.id))
            let candidates = wanted.isEmpty ? channels : channels.filter { $0.groupID.map(groupIDs.contains) ?? false }
            let streams = try await client.streams(ids: candidates.flatMap(\.streamIDs))
            let plan = ManagedChannelPlan(channels: candidates, streams: streams, groups: groups,
                                          groupFilter: configuration.channelGroups)
            state.withLock { state in
                state.channels = plan.channels
                state.reachable = true
                state.lastSyncAt = Date()
                state.lastError = nil
            }
            logger.info("dispatcharr channels read", metadata: [
                "dispatcharr.channels": "\(channels.count)", "dispatcharr.managed": "\(plan.channels.count)",
            ])
            return plan.channels
        } catch {
            noteFailure(error, context: "sync")
            throw error
        }
    }

    /// Syncs now and then every `interval` (default: the configured sync interval) until
    /// the task is cancelled; a failed sync is tried again sooner, backing off like writes.
    public func run(every interval: Duration? = nil) async {
        let interval = interval ?? configuration.syncInterval
        var failures = 0
        while !Task.isCancelled {
            do {
                try await syncOnce()
                failures = 0
            } catch {
                failures += 1
            }
            let wait = failures == 0 ? interval : min(interval, retry.delay(afterAttempt: failures))
            do { try await Task.sleep(for: wait) } catch { return }
        }
    }

    // MARK: - Pushing

    /// Queues the order for channel `channelID`: its working AceStream sources by score
    /// (`rankedContentIDs`, best first), then unmeasured ones, then `failedContentIDs`, then
    /// its other streams as they were. Returns at once; `unchanged` when that is its order.
    @discardableResult
    public func pushOrder(channelID: Int, rankedContentIDs: [String], failedContentIDs: [String]) -> PushOutcome {
        let outcome: PushOutcome = state.withLock { state in
            guard let index = state.channels.firstIndex(where: { $0.id == channelID }) else { return .unknown }
            let key = WriteKey.channel(channelID)
            guard let planned = state.channels[index].plannedStreamIDs(rankedContentIDs: rankedContentIDs,
                                                                       failedContentIDs: failedContentIDs) else {
                state.pending[key] = nil
                state.queue.removeAll { $0 == key }
                return .unchanged
            }
            let write = Write.channelStreams(channelID: channelID, streamIDs: planned)
            if state.pending[key]?.write == write { return .queued }
            guard configuration.reorder else {
                Self.record(write, in: &state)
                Self.apply(order: planned, toChannelAt: index, in: &state)
                return .recorded
            }
            enqueue(Pending(write: write, ranked: rankedContentIDs, failed: failedContentIDs, notBefore: .now),
                    key: key, in: &state)
            return .queued
        }
        if outcome == .recorded {
            logger.info("dispatcharr reorder off; would set the channel's streams", metadata: [
                "dispatcharr.channel": "\(channelID)", "dispatcharr.streams": "\(plannedOrder(channelID))",
            ])
        }
        return outcome
    }

    /// Queues `facts` for every managed stream whose URL carries `contentID`, merged into
    /// its `stream_stats`; streams whose last written facts are the same are skipped.
    @discardableResult
    public func pushFacts(contentID: String, facts: DispatcharrStreamFacts) -> PushOutcome {
        let fields = facts.statsFields
        let id = contentID.lowercased()
        var recorded: [Int] = []
        let outcome: PushOutcome = state.withLock { state in
            let streamIDs = Set(state.channels.flatMap { $0.sources.filter { $0.contentID == id }.map(\.streamID) })
            guard !streamIDs.isEmpty else { return .unknown }
            guard !fields.isEmpty else { return .unchanged }
            var outcome = PushOutcome.unchanged
            for streamID in streamIDs.sorted() where state.writtenFacts[streamID] != fields {
                let key = WriteKey.stream(streamID)
                let write = Write.streamStats(streamID: streamID, fields: fields)
                if state.pending[key]?.write == write {
                    outcome = .queued
                    continue
                }
                if configuration.reorder {
                    enqueue(Pending(write: write, notBefore: .now), key: key, in: &state)
                    outcome = .queued
                } else {
                    Self.record(write, in: &state)
                    state.writtenFacts[streamID] = fields
                    recorded.append(streamID)
                    outcome = .recorded
                }
            }
            return outcome
        }
        if !recorded.isEmpty {
            logger.info("dispatcharr reorder off; would merge stream_stats", metadata: [
                "dispatcharr.streams": "\(recorded)", "dispatcharr.fields": "\(JSONValue.object(fields))",
            ])
        }
        return outcome
    }

    /// Returns once no write is queued or in flight (given-up writes included).
    public func waitForWrites() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { state in
                if state.pendingCount == 0 { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }

    /// Drops every queued write and stops the writer (at shutdown); a write in flight
    /// finishes or fails on its own. Later pushes queue and write again.
    public func stop() {
        state.withLock { state in
            state.pending = [:]
            state.queue = []
            state.sleeper?.cancel()
            state.sleeper = nil
            state.writer?.cancel()
            state.writer = nil
            state.writerGeneration += 1
            Self.resumeIdleWaiters(in: &state)
        }
    }

    // MARK: - Writing

    private func enqueue(_ pending: Pending, key: WriteKey, in state: inout State) {
        if state.pending[key] == nil { state.queue.append(key) }
        state.pending[key] = pending
        state.sleeper?.cancel()
        if state.writer == nil {
            let generation = state.writerGeneration
            state.writer = Task { [self] in await drain(generation: generation) }
        }
    }

    private enum Step {
        case send(WriteKey, Pending)
        case wait(Task<Void, Never>)
        case done
    }

    private func drain(generation: Int) async {
        while true {
            let step: Step = state.withLock { state in
                // A writer replaced after `stop()` leaves the queue to the newer one.
                guard state.writerGeneration == generation else { return .done }
                let now = ContinuousClock.now
                if let index = state.queue.firstIndex(where: { state.pending[$0]!.notBefore <= now }) {
                    let key = state.queue.remove(at: index)
                    let pending = state.pending.removeValue(forKey: key)!
                    state.inFlight += 1
                    return .send(key, pending)
                }
                guard let due = state.queue.compactMap({ state.pending[$0]?.notBefore }).min() else {
                    state.writer = nil
                    state.sleeper = nil
                    Self.resumeIdleWaiters(in: &state)
                    return .done
                }
                // Nothing due: wait for the earliest retry, or a push (which cancels the wait).
                let task = Task { _ = try? await Task.sleep(until: due) }
                state.sleeper = task
                return .wait(task)
            }
            switch step {
            case .send(let key, let pending): await send(pending, key: key, generation: generation)
            case .wait(let sleeper): await sleeper.value
            case .done: return
            }
        }
    }

    private static func resumeIdleWaiters(in state: inout State) {
        guard state.pendingCount == 0 else { return }
        let waiters = state.idleWaiters
        state.idleWaiters = []
        waiters.forEach { $0.resume() }
    }

    private func send(_ pending: Pending, key: WriteKey, generation: Int) async {
        do throws(DispatcharrError) {
            switch pending.write {
            case .channelStreams(let channelID, _):
                try await writeOrder(channelID: channelID, pending: pending)
            case .streamStats(let streamID, let fields):
                try await client.mergeStreamStats(streamID: streamID, fields: fields)
                state.withLock { state in
                    state.writtenFacts[streamID] = fields
                    state.writesDone += 1
                    state.reachable = true
                    Self.record(pending.write, in: &state)
                }
            }
            state.withLock { state in
                state.inFlight -= 1
                if state.writer == nil { Self.resumeIdleWaiters(in: &state) }
            }
        } catch {
            let attempt = pending.attempts + 1
            let retrying = error.isRetryable && attempt < retry.maxAttempts
            var wait = retry.delay(afterAttempt: attempt)
            if case .throttled(let retryAfter) = error { wait = max(wait, retryAfter) }
            noteFailure(error, context: "\(Self.describe(pending.write)) (attempt \(attempt) of \(retry.maxAttempts)\(retrying ? ", retrying in \(Self.seconds(wait)) s" : ", giving up"))")
            state.withLock { state in
                state.inFlight -= 1
                guard state.writerGeneration == generation else {
                    if state.writer == nil { Self.resumeIdleWaiters(in: &state) }
                    return
                }
                if retrying, state.pending[key] == nil {
                    var again = pending
                    again.attempts = attempt
                    again.notBefore = .now + wait
                    state.pending[key] = again
                    state.queue.append(key)
                } else if !retrying {
                    state.writesFailed += 1
                }
            }
        }
    }

    /// Reads the channel, plans its order against what Dispatcharr holds now, and writes it if it differs.
    private func writeOrder(channelID: Int, pending: Pending) async throws(DispatcharrError) {
        let fresh = try await client.channel(id: channelID)
        let known: ManagedChannel? = state.withLock { $0.channels.first { $0.id == channelID } }
        var channel = known
        if known.map({ Set($0.streamIDs) != Set(fresh.streamIDs) }) ?? true {
            // Streams were added or removed in Dispatcharr since the last sync: plan on the new set.
            let streams = try await client.streams(ids: fresh.streamIDs)
            channel = ManagedChannelPlan(channels: [fresh], streams: streams, groups: [], groupFilter: []).channels.first
            channel?.groupName = known?.groupName
        } else {
            channel?.streamIDs = fresh.streamIDs
            channel = channel.map { Self.reordered($0, to: fresh.streamIDs) }
        }
        guard let channel else { return }
        guard let planned = channel.plannedStreamIDs(rankedContentIDs: pending.ranked, failedContentIDs: pending.failed) else {
            state.withLock { Self.replace(channel, in: &$0) }
            return
        }
        let written = try await client.setChannelStreams(channelID: channelID, streamIDs: planned)
        state.withLock { state in
            Self.replace(Self.reordered(channel, to: written.streamIDs), in: &state)
            state.writesDone += 1
            state.reachable = true
            Self.record(.channelStreams(channelID: channelID, streamIDs: planned), in: &state)
        }
        logger.info("dispatcharr channel reordered", metadata: [
            "dispatcharr.channel": "\(channelID)", "dispatcharr.streams": "\(planned)",
        ])
    }

    private func noteFailure(_ error: DispatcharrError, context: String) {
        state.withLock { state in
            state.lastError = "\(context): \(error)"
            switch error {
            case .unreachable, .timedOut: state.reachable = false
            case .invalidRequest: break
            default: state.reachable = true
            }
        }
        logger.warning("dispatcharr \(context) failed", metadata: ["dispatcharr.error": "\(error)"])
    }

    private func plannedOrder(_ channelID: Int) -> [Int] {
        state.withLock { $0.channels.first { $0.id == channelID }?.streamIDs ?? [] }
    }

    private static func record(_ write: Write, in state: inout State) {
        state.recent.append(write)
        if state.recent.count > recentLimit { state.recent.removeFirst(state.recent.count - recentLimit) }
    }

    private static func apply(order: [Int], toChannelAt index: Int, in state: inout State) {
        state.channels[index] = reordered(state.channels[index], to: order)
    }

    private static func replace(_ channel: ManagedChannel, in state: inout State) {
        if let index = state.channels.firstIndex(where: { $0.id == channel.id }) {
            state.channels[index] = channel
        }
    }

    /// `channel` with its streams in `order` (sources and others keep their membership).
    private static func reordered(_ channel: ManagedChannel, to order: [Int]) -> ManagedChannel {
        var channel = channel
        let position = Dictionary(order.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        channel.streamIDs = order
        channel.sources.sort { (position[$0.streamID] ?? .max) < (position[$1.streamID] ?? .max) }
        channel.otherStreamIDs.sort { (position[$0] ?? .max) < (position[$1] ?? .max) }
        return channel
    }

    /// `duration` in seconds with one decimal, for logs: "0.2", "30.0".
    private static func seconds(_ duration: Duration) -> String {
        let tenths = Int(duration / .milliseconds(100))
        return "\(tenths / 10).\(tenths % 10)"
    }

    private static func describe(_ write: Write) -> String {
        switch write {
        case .channelStreams(let channelID, _): "write of channel \(channelID)'s streams"
        case .streamStats(let streamID, _): "write of stream \(streamID)'s stream_stats"
        }
    }
}
