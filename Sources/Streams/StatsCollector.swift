import CurlHTTP
import Foundation
import Logging
import PersistentConditions
import RelayCore
import Store
import Locking
import Synchronization

/// Polls `stat_url` of every started stream, keeps the samples (with a
/// retention limit), and marks streams the engine no longer knows as ended.
///
/// The relay's own sessions it learns from the relay's events (`streamStarted`,
/// `streamEnded`); streams other proxies report through the events API it
/// finds in the store. The latest sample of each stream, and a short history
/// of its live edge, stay in memory for callers (`latestStats`,
/// `liveposAdvanced`) and are pushed to the loop detector, so nobody reads
/// samples back from the store.
///
/// Each poll has a short time limit and at most `concurrency` run at once, so a
/// hung engine costs one slot for a few seconds and never piles up requests.
public final class StatsCollector: RelayObserver, Sendable {
    /// One stream being polled and what its polls found.
    private struct Tracked {
        var record: StreamRecord
        var latest: StatSample?
        /// (time, live_last) of recent samples, oldest first, for "did livepos advance".
        var edges: [(at: Date, liveLast: Int64)] = []
    }

    private let store: Store
    private let timeout: TimeInterval
    private let concurrency: Int
    private let retention: TimeInterval
    private let logger: Logger
    private let client: HTTPClient
    private let loops: LoopDetector?
    /// Why a reported stream's `stat_url` must not be fetched (not an engine of the fleet); nil: fetch.
    private let urlRefusal: (@Sendable (String) -> String?)?
    /// Reported streams whose `stat_url` was refused, so the refusal is logged once per stream.
    private let refusedStreams = Locked<Set<String>>([])
    /// The relay's own started sessions, by stream id.
    private let relayStreams = Locked<[String: Tracked]>([:])
    /// Every polled stream's latest state, by stream id (relay and external).
    private let tracked = Locked<[String: Tracked]>([:])
    /// Per stream, its stat polls failing: logged when it begins, summarised, and when it ends.
    private let failingPolls = Locked<[String: PersistentConditionLog]>([:])
    /// Failed polls of streams no longer polled, so `pollFailures` never goes down.
    private let forgottenPollFailures = Atomic<UInt64>(0)
    /// How long live-edge history is kept per stream.
    static let edgeHistory: TimeInterval = 600

    /// - Parameter loops: hears every sample and every stream's end, so it checks from memory.
    /// - Parameter urlRefusal: checked before a stream another proxy reported is polled; the
    ///   relay's own sessions have URLs already rewritten to their engine.
    public init(store: Store, timeout: TimeInterval = 3, concurrency: Int = 8, retention: TimeInterval = 3_600,
                client: HTTPClient = .shared, loops: LoopDetector? = nil,
                urlRefusal: (@Sendable (String) -> String?)? = nil, logger: Logger) {
        self.store = store
        self.urlRefusal = urlRefusal
        self.client = client
        self.timeout = timeout
        self.concurrency = max(concurrency, 1)
        self.retention = retention
        self.loops = loops
        self.logger = logger
    }

    // MARK: The relay's sessions, from its events

    public func observe(_ event: RelayEvent) {
        switch event {
        case .streamStarted(let stream):
            let record = StreamRecord(id: StreamRecord.streamID(key: stream.content.value, playbackSessionID: stream.session.playbackSessionID),
                                      keyType: stream.content.kind.rawValue, key: stream.content.value, containerID: stream.engine.id,
                                      playbackSessionID: stream.session.playbackSessionID, statURL: stream.session.statURL,
                                      commandURL: stream.session.commandURL, isLive: stream.session.isLive)
            relayStreams.withLock { $0[record.id] = Tracked(record: record) }
        case .streamEnded(let stream, _):
            let id = StreamRecord.streamID(key: stream.content.value, playbackSessionID: stream.session.playbackSessionID)
            forget(id)
        default:
            break
        }
    }

    private func forget(_ id: String) {
        relayStreams.withLock { _ = $0.removeValue(forKey: id) }
        tracked.withLock { _ = $0.removeValue(forKey: id) }
        if let condition = failingPolls.withLock({ $0.removeValue(forKey: id) }) {
            forgottenPollFailures.add(condition.occurrences, ordering: .relaxed)
        }
        loops?.streamEnded(id: id)
    }

    /// Stat polls that failed since start, over every stream; for a metric.
    public var pollFailures: UInt64 {
        failingPolls.withLock { $0.values.reduce(0) { $0 + $1.occurrences } } + forgottenPollFailures.load(ordering: .relaxed)
    }

    private func pollCondition(_ stream: StreamRecord) -> PersistentConditionLog {
        failingPolls.withLock { conditions in
            if let known = conditions[stream.id] { return known }
            let made = PersistentConditionLog(name: "stat polls of stream \(stream.id) failing", logger: logger)
            conditions[stream.id] = made
            return made
        }
    }

    // MARK: What callers ask

    /// The newest sample of the content's started stream (40-hex content id or infohash), if one was polled.
    public func latestStats(_ contentID: String) -> StatSample? {
        let key = contentID.lowercased()
        return tracked.withLock { streams in
            streams.values.filter { $0.record.key.lowercased() == key }.compactMap(\.latest).max { $0.at < $1.at }
        }
    }

    /// Whether the content's live edge (`livepos.live_last`) moved between the first
    /// sample at or after `since` and the newest; nil with fewer than two such samples.
    public func liveposAdvanced(_ contentID: String, since: Date) -> Bool? {
        let key = contentID.lowercased()
        let edges = tracked.withLock { streams in
            streams.values.filter { $0.record.key.lowercased() == key }.flatMap(\.edges)
        }.filter { $0.at >= since }.sorted { $0.at < $1.at }
        guard let first = edges.first, let last = edges.last, edges.count >= 2 else { return nil }
        return last.liveLast > first.liveLast
    }

    // MARK: Polling

    /// One round: polls every started stream once, then prunes old samples.
    public func collectOnce() async {
        let external: [StreamRecord]
        do {
            external = try await store.streams(status: .started)
        } catch {
            logger.warning("cannot read streams to collect stats", metadata: ["stats.reason": "\(error)"])
            return
        }
        let own = relayStreams.withLock { $0.mapValues(\.record) }
        // The relay's sessions as its events say; the store for every stream reported by others.
        let reported = external.filter { own[$0.id] == nil && !($0.statURL ?? "").isEmpty && mayPoll($0) }
        let streams = (Array(own.values) + reported).filter { !($0.statURL ?? "").isEmpty }
        for start in stride(from: 0, to: streams.count, by: concurrency) {
            let batch = streams[start..<min(start + concurrency, streams.count)]
            await withTaskGroup(of: (StreamRecord, StatReading).self) { group in
                for stream in batch {
                    group.addTask { [timeout, client] in (stream, await Self.read(stream.statURL!, timeout: timeout, client: client)) }
                }
                for await (stream, reading) in group { await record(reading, for: stream) }
            }
        }
        do {
            try await store.pruneSamples(before: Date().addingTimeInterval(-retention))
        } catch {
            logger.warning("cannot prune stat samples", metadata: ["stats.reason": "\(error)"])
        }
    }

    /// Whether a reported stream's `stat_url` may be fetched; logs a refusal once per stream.
    private func mayPoll(_ stream: StreamRecord) -> Bool {
        guard let url = stream.statURL, let refusal = urlRefusal?(url) else { return true }
        let first = refusedStreams.withLock { $0.insert(stream.id).inserted }
        if first {
            logger.warning("a reported stream's stat_url is not polled", metadata: ["stats.stream": "\(stream.id)", "stats.reason": "\(refusal)"])
        }
        return false
    }

    static func read(_ url: String, timeout: TimeInterval, client: HTTPClient) async -> StatReading {
        let request = HTTPRequest(url: url, connectTimeout: .seconds(min(timeout, 3)), timeout: .seconds(timeout))
        switch await client.send(request) {
        case .failure(let error):
            return .failed(error.description)
        case .success(let response):
            // The engine answers an unknown session with an error status and a JSON body saying so.
            guard response.status == 200 || (response.status >= 400 && !response.body.isEmpty) else {
                return .failed("stat_url answered HTTP \(response.status)")
            }
            return StatReading.parse(response.body, at: Date())
        }
    }

    private func remember(_ sample: StatSample, for stream: StreamRecord) {
        tracked.withLock { streams in
            var entry = streams[stream.id] ?? Tracked(record: stream)
            entry.latest = sample
            if let liveLast = sample.livepos?.liveLast {
                entry.edges.append((sample.at, liveLast))
                entry.edges.removeAll { sample.at.timeIntervalSince($0.at) > Self.edgeHistory }
            }
            streams[stream.id] = entry
        }
        loops?.observe(stream: stream, sample: sample)
    }

    private func record(_ reading: StatReading, for stream: StreamRecord) async {
        do {
            switch reading {
            case .sample(let sample):
                failingPolls.withLock { $0[stream.id] }?.cleared(metadata: ["stats.stream": "\(stream.id)"])
                remember(sample, for: stream)
                try await store.saveSample(streamID: stream.id, at: sample.at, sample)
            case .sessionEnded:
                logger.info("engine no longer knows the session: stream ended", metadata: ["stats.stream": "\(stream.id)"])
                forget(stream.id)
                _ = try await store.endStream(id: stream.id, reason: "engine ended the session")
            case .failed(let why):
                pollCondition(stream).occurred(why, metadata: ["stats.stream": "\(stream.id)"])
            }
        } catch {
            // Once a second per stream while the store fails: the store logs that condition itself.
            logger.debug("cannot store stats", metadata: ["stats.reason": "\(error)"])
        }
    }
}
