import EngineSimulator
import Foundation
import Logging
@testable import RelayCore
import Locking

/// A relay on 127.0.0.1 (port 0) in front of one or more engine simulators, in process.
final class RelayHarness: @unchecked Sendable {
    let engines: [EngineSimulator]
    let relay: RelayServer
    /// Every event the relay published, in order.
    private let events = EventLog()
    private var eventSubscription: RelayEventSubscription?
    var simulator: EngineSimulator { engines[0] }
    var port: UInt16 { relay.port }

    static let logger: Logger = {
        var logger = Logger(label: "acerelay-test") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = ProcessInfo.processInfo.environment["ACERELAY_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return logger
    }()

    /// - Parameters:
    ///   - engineCount: simulators to start; the relay uses all of them as static engines.
    ///   - noEngines: start the relay with an empty engine list.
    init(engineCount: Int = 1,
         noEngines: Bool = false,
         media: SimulatorMedia = .synthetic(bitsPerSecond: 4_000_000),
         channels: (any ChannelDirectory)? = nil,
         relay configureRelay: (inout RelayConfiguration) -> Void = { _ in },
         simulator configureSimulator: (inout EngineSimulatorConfiguration) -> Void = { _ in }) throws {
        var simulators: [EngineSimulator] = []
        for _ in 0..<engineCount {
            var configuration = EngineSimulatorConfiguration()
            configuration.media = media
            configureSimulator(&configuration)
            let simulator = try EngineSimulator(configuration: configuration, logger: Self.logger)
            try simulator.start()
            simulators.append(simulator)
        }
        engines = simulators
        var configuration = RelayConfiguration()
        configuration.listenHost = "127.0.0.1"
        configuration.listenPort = 0
        configuration.workers = 2
        configuration.gracePeriod = 2
        configuration.startTimeout = 10
        configuration.earlyHeadAfter = 10
        configureRelay(&configuration)
        let endpoints = noEngines ? [] : simulators.map { EngineEndpoint(id: "sim-\($0.port)", baseURL: "http://127.0.0.1:\($0.port)") }
        let feed = RelayEventFeed()
        relay = RelayServer(configuration: configuration, selector: StaticEngineSelector(engines: endpoints), events: feed,
                            channels: channels, logger: Self.logger)
        eventSubscription = feed.subscribe("harness") { [events] event in events.append(event) }
        try relay.start()
    }

    /// Waits until the relay has published an event `matches` accepts.
    func waitForEvent(timeout: Double, _ matches: @escaping (RelayEvent) -> Bool) -> Bool {
        eventually(timeout: timeout) { events.all.contains(where: matches) }
    }

    var publishedEvents: [RelayEvent] { events.all }

    func stop() {
        eventSubscription?.cancel()
        relay.shutdown(timeout: 3)
        for engine in engines { engine.shutdown() }
    }

    /// A valid 40-hex content id, different for each `n`.
    static func contentID(_ n: Int) -> String {
        let hex = String(n, radix: 16)
        return String(repeating: "a", count: 40 - hex.count) + hex
    }

    static func path(_ id: String) -> String { "/ace/getstream?id=\(id)" }

    func player(_ id: String, receiveBuffer: Int32? = nil) throws -> TestPlayer {
        try TestPlayer(port: port, path: Self.path(id), receiveBuffer: receiveBuffer)
    }

    func hub(_ id: String) -> HubSnapshot? { relay.status().hubs.first { $0.contentKey == id } }
}

/// The relay's events as a test saw them.
final class EventLog: Sendable {
    private let events = Locked<[RelayEvent]>([])
    func append(_ event: RelayEvent) { events.withLock { $0.append(event) } }
    var all: [RelayEvent] { events.withLock { $0 } }
}

/// Runs `body` for each index on its own thread (truly at once, unlike
/// concurrentPerform, which uses one thread per core) and collects the results in order.
func concurrently<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) -> T) -> [T] {
    let results = ResultBox<T>(count: count)
    let group = DispatchGroup()
    for i in 0..<count {
        group.enter()
        let thread = Thread {
            results.set(i, body(i))
            group.leave()
        }
        thread.stackSize = 512 * 1024
        thread.start()
    }
    group.wait()
    return results.values
}

final class ResultBox<T: Sendable>: @unchecked Sendable {
    private var storage: [T?]
    private let lock = NSLock()
    init(count: Int) { storage = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: T) { lock.lock(); storage[i] = value; lock.unlock() }
    var values: [T] { lock.lock(); defer { lock.unlock() }; return storage.map { $0! } }
}

/// Where `needle` (packet-aligned) starts inside `haystack`, searching packet offsets.
func packetOffset(of needle: ArraySlice<UInt8>, in haystack: [UInt8]) -> Int? {
    guard needle.count <= haystack.count else { return nil }
    var i = 0
    while i + needle.count <= haystack.count {
        if haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        i += 188
    }
    return nil
}

let ffmpegPath = "/usr/bin/ffmpeg"
