@_exported import TestSupport
import Channels
import EngineSimulator
import Foundation
import Logging
import RelayCore
import Store
import Streams
import Locking
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A relay on 127.0.0.1 in front of one engine simulator serving several
/// contents, with the stats collector and loop detector of the control plane
/// fed from the relay's events, and an in-memory catalog and sink.
final class ProbeRig: @unchecked Sendable {
    let simulator: EngineSimulator
    let relay: RelayServer
    let events = EventLog()
    let store: Store
    let collector: StatsCollector
    let loops: LoopDetector
    let catalog = MemoryCatalog()
    let sink = MemorySink()
    private let directory: TestDirectory
    private var subscriptions: [RelayEventSubscription] = []
    private let stopped = Atomic<Bool>(false)

    static let logger: Logger = {
        var logger = Logger(label: "acerelay-test") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = ProcessInfo.processInfo.environment["ACERELAY_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return logger
    }()

    init(maxStreamsPerEngine: Int = 0, loopDetection: Bool = false,
         relay configureRelay: (inout RelayConfiguration) -> Void = { _ in },
         simulator configureSimulator: (inout EngineSimulatorConfiguration) -> Void = { _ in }) throws {
        var simulatorConfiguration = EngineSimulatorConfiguration()
        simulatorConfiguration.media = .synthetic(bitsPerSecond: 2_000_000)
        configureSimulator(&simulatorConfiguration)
        simulator = try EngineSimulator(configuration: simulatorConfiguration, logger: Self.logger)
        try simulator.start()
        directory = try TestDirectory("probe")
        store = try Store(directory: directory.path)
        let feed = RelayEventFeed()
        let closer = RelayBox()
        loops = LoopDetector(store: store, config: LoopDetectionConfig(enabled: loopDetection, thresholdSeconds: 1, checkIntervalSeconds: 1),
                             logger: Self.logger, stopExternal: { _ in }) { content, refusal in
            closer.relay?.closeHub(for: content, refusal: refusal)
        }
        collector = StatsCollector(store: store, timeout: 2, loops: loops, logger: Self.logger)
        var configuration = RelayConfiguration()
        configuration.listenHost = "127.0.0.1"
        configuration.listenPort = 0
        configuration.workers = 2
        configuration.gracePeriod = 30
        configuration.startTimeout = 5
        configuration.earlyHeadAfter = 10
        configuration.silenceTimeout = 30
        configureRelay(&configuration)
        let engine = EngineEndpoint(id: "sim", baseURL: "http://127.0.0.1:\(simulator.port)")
        relay = RelayServer(configuration: configuration,
                            selector: StaticEngineSelector(engines: [engine], maxStreamsPerEngine: maxStreamsPerEngine),
                            events: feed, contentGate: loops, logger: Self.logger)
        closer.relay = relay
        subscriptions.append(feed.subscribe("test") { [events] in events.append($0) })
        subscriptions.append(feed.subscribe("stats", collector))
        try relay.start()
    }

    /// Polls engine stats and checks for loops, as the control plane's periodic services do, until `stop()`.
    func startControlPlaneLoop() {
        Task.detached { [self] in
            while !stopped.load(ordering: .relaxed) {
                await collector.collectOnce()
                await loops.check()
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        for subscription in subscriptions { subscription.cancel() }
        relay.shutdown(timeout: 3)
        simulator.shutdown()
    }

    static func contentID(_ n: Int) -> String {
        let hex = String(n, radix: 16)
        return String(repeating: "b", count: 40 - hex.count) + hex
    }

    static func key(_ n: Int) -> ContentKey { ContentKey(kind: .contentID, value: contentID(n))! }

    func waitForEvent(timeout: Double, _ matches: @escaping (RelayEvent) -> Bool) async -> Bool {
        await eventually(timeout: timeout) { events.all.contains(where: matches) }
    }
}

final class RelayBox: @unchecked Sendable {
    var relay: RelayServer?
}

/// The channel service's catalog, in memory: fixed sources, each stamped when the sink records it.
final class MemoryCatalog: SourceCatalog, @unchecked Sendable {
    private let sources = Locked<[SourceDue]>([])
    func set(_ ids: [String]) { sources.withLock { $0 = ids.map { SourceDue(contentID: $0, lastMeasuredAt: nil) } } }
    func measured(_ id: String) {
        sources.withLock { list in
            for i in list.indices where list[i].contentID == id { list[i].lastMeasuredAt = Date().timeIntervalSince1970 }
        }
    }
    func sourcesToMeasure() async -> [SourceDue] { sources.withLock { $0 } }
}

/// The channel service's sink, in memory.
final class MemorySink: SourceMeasurementSink, @unchecked Sendable {
    private let records = Locked<[(String, SourceMeasurement)]>([])
    var catalog: MemoryCatalog?
    func record(contentID: String, measurement: SourceMeasurement) async {
        records.withLock { $0.append((contentID, measurement)) }
        catalog?.measured(contentID)
    }
    var all: [(String, SourceMeasurement)] { records.withLock { $0 } }
    func latest(_ id: String) -> SourceMeasurement? { all.last { $0.0 == id }?.1 }
}

/// The relay's events as a test saw them.
final class EventLog: Sendable {
    private let events = Locked<[RelayEvent]>([])
    func append(_ event: RelayEvent) { events.withLock { $0.append(event) } }
    var all: [RelayEvent] { events.withLock { $0 } }
}

/// Polls `condition` until it holds or `timeout` passes, without holding a thread of the
/// cooperative pool (the prober under test runs on it).
func eventually(timeout: Double, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

/// A player that sends `GET /ace/getstream` and reads the status and some bytes.
final class Player: @unchecked Sendable {
    private let player: TestPlayer

    init(port: UInt16, contentID: String) throws {
        player = try TestPlayer(port: port, request: "GET /ace/getstream?id=\(contentID) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    }

    /// Reads until the head is in (the first time) and `bodyBytes` of body followed, for up to
    /// 10 s each; returns the status (0 if none came) and the body bytes read.
    func read(bodyBytes: Int) -> (status: Int, body: Int) {
        guard let head = try? player.readHead(timeout: 10) else { return (0, 0) }
        return (head.status, player.readBody(count: bodyBytes, timeout: 10).count)
    }
}

typealias ProbeTestError = TestFailure
