import Foundation
import Logging
import Locking

/// A stand-in AceStream engine: the engine's HTTP API (getstream, playback, stat, command,
/// status), its player-id rule and quirks, and switchable faults, on real sockets.
///
/// One thread accepts; each connection gets its own thread with blocking sockets. That is
/// plenty for what it serves: a relay (one playback connection per content) and API calls.
/// Every session plays the same looped media from its own start, as one endless stream
/// whose continuity counters and timestamps never jump.
public final class EngineSimulator: Sendable {
    /// The configuration it was made with.
    public let configuration: EngineSimulatorConfiguration
    let logger: Logger
    /// The media every session plays, unless `mediaByInfohash` has its content.
    let media: MediaLoop
    /// `configuration.mediaByContent`, loaded, by infohash.
    let mediaByInfohash: [String: MediaLoop]
    let state = Locked(SimulatorState())
    let connections = ConnectionRegistry()
    /// Serialises start, shutdown, die and revive, which wait on threads and must not interleave.
    private let lifecycleLock = Locked(())

    /// How often a playback response wakes to send what came due.
    static let playbackTickMilliseconds: Int32 = 20
    /// Most bytes sent in one chunk, so a burst is written in pieces.
    static let maximumChunkBytes: Int64 = 256 * 1024
    /// How long `shutdown()` waits for its threads.
    private static let shutdownGraceSeconds = 5.0

    /// Loads (or generates) the media; nothing listens until `start()`.
    ///
    /// - Throws: `EngineSimulatorError` when the media file is unreadable or not MPEG-TS with
    ///   a PCR, or the synthetic settings are out of range.
    public init(
        configuration: EngineSimulatorConfiguration,
        logger: Logger = Logger(label: "acerelay.engine-simulator")
    ) throws {
        self.configuration = configuration
        self.logger = logger
        media = try Self.load(configuration.media, loopSeconds: configuration.syntheticLoopSeconds)
        var byInfohash: [String: MediaLoop] = [:]
        for (key, source) in configuration.mediaByContent {
            let lowered = key.lowercased()
            let loaded = try Self.load(source, loopSeconds: configuration.syntheticLoopSeconds)
            byInfohash[Self.infohash(forContentID: lowered)] = loaded
            // A key may be an infohash itself.
            byInfohash[lowered] = loaded
        }
        mediaByInfohash = byInfohash
        logger.debug("engine simulator media loaded", metadata: [
            "sim.media_bytes": "\(media.bytes.count)",
            "sim.loop_seconds": "\(media.durationSeconds)",
            "sim.bitrate": "\(Int(media.bytesPerSecond * 8))",
        ])
    }

    private static func load(_ source: SimulatorMedia, loopSeconds: Int) throws -> MediaLoop {
        switch source {
        case let .file(path):
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw EngineSimulatorError.mediaUnreadable(path: path, reason: (error as NSError).localizedDescription)
            }
            return try MediaLoop(bytes: [UInt8](data), origin: path)
        case let .synthetic(bitsPerSecond):
            let bytes = try SyntheticTransportStream.make(bitsPerSecond: bitsPerSecond, seconds: loopSeconds)
            return try MediaLoop(bytes: bytes, origin: "synthetic", knownDurationTicks: Int64(loopSeconds) * 90_000)
        }
    }

    /// The media sessions of a content play.
    func media(forInfohash infohash: String) -> MediaLoop { mediaByInfohash[infohash] ?? media }

    /// Binds and serves on background threads.
    ///
    /// - Throws: `EngineSimulatorError.cannotListen` or `.invalidBindAddress` when binding
    ///   fails, `.alreadyStarted` on a second call.
    public func start() throws {
        try lifecycleLock.withLock { _ in
            guard case .idle = state.withLock({ $0.lifecycle }) else { throw EngineSimulatorError.alreadyStarted }
            let listener = try ListeningSocket.listen(host: configuration.host, port: configuration.port)
            state.withLock {
                $0.lifecycle = .running(listener)
                $0.port = listener.port
            }
            spawnAcceptor(for: listener)
            logger.info("engine simulator listening", metadata: [
                "sim.address": "\(configuration.host):\(listener.port)",
                "sim.bitrate": "\(Int(media.bytesPerSecond * 8))",
            ])
        }
    }

    /// The port served; 0 before `start()`. Stays the same across `die` and revival.
    public var port: UInt16 { state.withLock { $0.port } }

    /// Average bitrate of the media, derived from its PCR and timestamps, in bits per second.
    public var mediaBitsPerSecond: Double { media.bytesPerSecond * 8 }

    /// Length of one loop of the media in seconds.
    public var mediaLoopSeconds: Double { media.durationSeconds }

    /// Closes the listener and every connection, ends every session, and waits (up to 5 s)
    /// for its threads to finish. Safe to call more than once.
    public func shutdown() {
        lifecycleLock.withLock { _ in
            let listener: ListeningSocket? = state.withLock { state in
                let listener: ListeningSocket? = switch state.lifecycle {
                case let .running(listener), let .dead(retired: listener): listener
                case .idle, .stopped: nil
                }
                state.lifecycle = .stopped
                for id in Array(state.sessions.keys) { state.endSession(id) }
                return listener
            }
            listener?.interrupt()
            connections.abortAll()
            let deadline = Date().addingTimeInterval(Self.shutdownGraceSeconds)
            while (listener.map { !$0.closed } ?? false) || connections.openCount > 0, Date() < deadline {
                usleep(2_000)
            }
            if connections.openCount > 0 {
                logger.warning("engine simulator threads still running after shutdown",
                               metadata: ["sim.open_connections": "\(connections.openCount)"])
            }
        }
    }

    /// Counters of one content, named by content id or infohash (case-insensitive); zero if unknown.
    public func counters(for contentID: String) -> SimulatorCounters {
        let key = contentID.lowercased()
        return state.withLock { state in
            state.counters[key] ?? state.counters[Self.infohash(forContentID: key)] ?? SimulatorCounters()
        }
    }

    /// Counters summed over every content.
    public var totalCounters: SimulatorCounters {
        state.withLock { $0.counters.values.reduce(SimulatorCounters(), +) }
    }

    /// Totals and per-content counters, as `GET /sim/counters` answers them.
    public var countersReport: SimulatorCountersReport {
        state.withLock { state in
            var contents: [String: SimulatorCounters] = [:]
            for (infohash, counters) in state.counters {
                contents[state.contentNames[infohash] ?? infohash] = counters
            }
            return SimulatorCountersReport(total: state.counters.values.reduce(SimulatorCounters(), +),
                                           contents: contents)
        }
    }

    /// Puts on a fault for one content (by content id or infohash) or, with nil, for every content.
    ///
    /// A nil fault clears what was set for that scope (nil scope: everything) and revives a dead
    /// engine. One standing fault per scope: a new one replaces the old. `cleanEOF` and `garbage`
    /// are one-shot and go to the sessions in scope; `die` is engine-wide whatever the scope.
    public func setFault(_ fault: SimulatorFault?, for contentID: String? = nil) {
        let scope = FaultScope(contentID: contentID)
        let now = monotonicNanoseconds()
        logger.info("engine simulator fault", metadata: [
            "sim.fault": "\(fault.map { "\($0)" } ?? "clear")",
            "sim.content": "\(contentID ?? "*")",
        ])
        switch fault {
        case nil:
            state.withLock { state in
                state.faults.clear(scope)
                for id in Array(state.sessions.keys) where scope.covers(state.sessions[id]!.infohash) {
                    state.sessions[id]!.pendingCleanEOF = false
                    state.sessions[id]!.pendingGarbageBytes = 0
                }
            }
            revive()
        case .hang:
            state.withLock { $0.faults.set(.hang, for: scope) }
        case let .stall(seconds):
            let until = now + UInt64(max(0, seconds) * 1_000_000_000)
            state.withLock { $0.faults.set(.stall(until: until), for: scope) }
        case .frozenLiveLast:
            let seconds = Int(Date().timeIntervalSince1970)
            state.withLock { $0.faults.set(.frozenLiveLast(unixSeconds: seconds), for: scope) }
        case .loadError:
            state.withLock { $0.faults.set(.loadError, for: scope) }
        case .cleanEOF, .garbage:
            state.withLock { state in
                var delivered = false
                for id in Array(state.sessions.keys) where scope.covers(state.sessions[id]!.infohash) {
                    Self.arm(fault!, on: &state.sessions[id]!)
                    delivered = true
                }
                if !delivered, scope.key != nil { state.faults.hold(fault!, for: scope) }
            }
        case .die:
            die()
        }
    }

    /// The infohash the simulated engine gives a content id: the SHA-1 of the lowercased id, in hex.
    /// Deterministic, so tests can predict it, and never equal to the id.
    public static func infohash(forContentID contentID: String) -> String {
        SHA1.hex(of: contentID.lowercased())
    }

    /// Arms a one-shot fault on a session.
    static func arm(_ fault: SimulatorFault, on session: inout PlaybackSession) {
        switch fault {
        case .cleanEOF: session.pendingCleanEOF = true
        case let .garbage(bytes): session.pendingGarbageBytes = max(1, min(bytes, 1 << 20))
        default: break
        }
    }

    // MARK: Lifecycle

    /// The engine dies: listener and connections closed, sessions gone, port refusing.
    private func die() {
        lifecycleLock.withLock { _ in
            let listener: ListeningSocket? = state.withLock { state in
                guard case let .running(listener) = state.lifecycle else { return nil }
                state.lifecycle = .dead(retired: listener)
                for id in Array(state.sessions.keys) { state.endSession(id) }
                return listener
            }
            guard let listener else { return }
            listener.interrupt()
            connections.abortAll()
            logger.info("engine simulator died", metadata: ["sim.port": "\(listener.port)"])
        }
    }

    /// A dead engine listens again on its port; does nothing unless it is dead.
    func revive() {
        lifecycleLock.withLock { _ in
            guard case let .dead(retired) = state.withLock({ $0.lifecycle }) else { return }
            // The acceptor closes the old socket; the port cannot be bound again before that.
            let deadline = Date().addingTimeInterval(2)
            while !retired.closed, Date() < deadline { usleep(1_000) }
            do {
                let listener = try ListeningSocket.listen(host: configuration.host, port: retired.port)
                state.withLock { $0.lifecycle = .running(listener) }
                spawnAcceptor(for: listener)
                logger.info("engine simulator revived", metadata: ["sim.port": "\(listener.port)"])
            } catch {
                logger.error("engine simulator could not listen again", metadata: ["sim.error": "\(error)"])
            }
        }
    }

    /// Whether `listener` is the one being served (not retired by die or shutdown).
    func isServing(_ listener: ListeningSocket) -> Bool {
        state.withLock { state in
            if case let .running(current) = state.lifecycle { current === listener } else { false }
        }
    }

    private func spawnAcceptor(for listener: ListeningSocket) {
        Thread.detachNewThread { [self] in
            acceptLoop(listener)
        }
    }

    private func acceptLoop(_ listener: ListeningSocket) {
        while true {
            switch listener.accept() {
            case let .accepted(descriptor):
                let connection = connections.adopt(descriptor)
                // Checked after registering: a die or shutdown from now on aborts it; one
                // that came before is seen here.
                guard isServing(listener) else {
                    connections.release(connection)
                    continue
                }
                Thread.detachNewThread { [self] in
                    serve(connection)
                }
            case .retry:
                continue
            case .finished:
                listener.close()
                return
            }
        }
    }
}
