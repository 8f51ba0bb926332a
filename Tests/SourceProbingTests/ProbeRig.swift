import Channels
import EngineSimulator
import Foundation
import Logging
import RelayCore
import Store
import Streams
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
    private let directory: String
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
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("acerelay-probe-\(UUID().uuidString)").path
        store = try Store(directory: directory)
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
        try? FileManager.default.removeItem(atPath: directory)
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
    private let sources = Mutex<[SourceDue]>([])
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
    private let records = Mutex<[(String, SourceMeasurement)]>([])
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
    private let events = Mutex<[RelayEvent]>([])
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

/// A player: a blocking socket that sends `GET /ace/getstream` and reads the status and some bytes.
final class Player: @unchecked Sendable {
    let fd: Int32

    init(port: UInt16, contentID: String) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw ProbeTestError("connect failed: errno \(errno)") }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET /ace/getstream?id=\(contentID) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    deinit { Glibc.close(fd) }

    /// Status of the response head, once read.
    private var status: Int?

    /// Reads until the head is in (the first time) and `bodyBytes` of body followed;
    /// returns the status (0 if none came) and the body bytes read.
    func read(bodyBytes: Int) -> (status: Int, body: Int) {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var headEnd: Int? = status == nil ? nil : 0
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            data.append(contentsOf: buffer[0..<n])
            if headEnd == nil, let range = data.firstRange(of: Array("\r\n\r\n".utf8)) { headEnd = range.upperBound }
            if let headEnd, data.count - headEnd >= bodyBytes { break }
        }
        guard let headEnd else { return (0, 0) }
        if status == nil {
            let line = String(decoding: data[0..<headEnd], as: UTF8.self).split(separator: " ")
            status = line.count > 1 ? Int(line[1]) ?? 0 : 0
        }
        return (status ?? 0, data.count - headEnd)
    }
}

struct ProbeTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
