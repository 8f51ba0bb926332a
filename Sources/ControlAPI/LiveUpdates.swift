import EngineFleet
import Foundation
import RelayCore
import Store
import Locking
import Synchronization

/// One Server-Sent Event: its name and its JSON data.
struct LiveMessage: Sendable {
    var name: String
    var json: Data

    /// The event as it goes on the wire (`event:` and one `data:` line; JSON has no raw newlines).
    var wireText: String { "event: \(name)\ndata: \(String(decoding: json, as: UTF8.self))\n\n" }
}

/// The panel's live updates: fans relay events and periodic snapshots out to
/// every `GET /events/live` client.
///
/// Each client has a queue of at most `clientQueueCapacity` messages that
/// keeps the newest: a client that reads slowly loses old messages (counted in
/// `droppedMessages`) and is put right by the next snapshot, which carries the
/// whole state. Publishing never waits for a client, so a stuck browser can
/// neither grow memory nor hold up the relay's event thread or the other clients.
public final class LiveUpdates: RelayObserver {
    /// Messages queued per client before the oldest is dropped.
    public static let clientQueueCapacity = 64

    private struct State {
        var clients: [UInt64: AsyncStream<LiveMessage>.Continuation] = [:]
        var nextClient: UInt64 = 0
        /// Players per open hub, from join and leave events, so a stream event carries the new count.
        var players: [HubID: Int] = [:]
        /// Engine health as the last tick saw it, to announce changes.
        var engineHealth: [String: String] = [:]
        var rates = RateMeter()
        /// Bytes per second in and out as of the last tick.
        var lastRates = (ingress: 0.0, egress: 0.0)
        var finished = false
    }

    private let state = Locked(State())
    private let firstBytes = Locked(FirstByteWindow())
    private let dropped = Atomic<UInt64>(0)

    public init() {}

    /// Messages dropped because a client fell behind, over all clients.
    public var droppedMessages: UInt64 { dropped.load(ordering: .relaxed) }

    /// Clients connected now.
    public var clientCount: Int { state.withLock { $0.clients.count } }

    /// Hubs whose players are counted: the open ones.
    var trackedHubCount: Int { state.withLock { $0.players.count } }

    /// Relay and engine throughput as of the last tick, in bytes per second.
    var rates: (ingress: Double, egress: Double) { state.withLock { $0.lastRates } }

    /// The 95th percentile of players' time to first byte over the last minute, in milliseconds; 0 without players.
    public func firstByteP95Milliseconds(now: Date = Date()) -> Double {
        firstBytes.withLock { $0.percentile95(now: now) } * 1000
    }

    // MARK: Clients

    /// A new client's queue; `remove(_:)` it when the client goes.
    func addClient() -> (id: UInt64, messages: AsyncStream<LiveMessage>) {
        let (stream, continuation) = AsyncStream.makeStream(of: LiveMessage.self,
                                                            bufferingPolicy: .bufferingNewest(Self.clientQueueCapacity))
        let id: UInt64? = state.withLock { state in
            guard !state.finished else { return nil }
            defer { state.nextClient += 1 }
            state.clients[state.nextClient] = continuation
            return state.nextClient
        }
        if id == nil { continuation.finish() }
        return (id ?? .max, stream)
    }

    func remove(_ id: UInt64) {
        state.withLock { $0.clients.removeValue(forKey: id) }?.finish()
    }

    /// Ends every client's stream (at shutdown, so open responses complete) and refuses new ones.
    public func finishAll() {
        let clients = state.withLock { state in
            state.finished = true
            defer { state.clients = [:] }
            return Array(state.clients.values)
        }
        for client in clients { client.finish() }
    }

    private func broadcast(_ message: LiveMessage) {
        let clients = state.withLock { Array($0.clients.values) }
        for client in clients {
            if case .dropped = client.yield(message) { dropped.add(1, ordering: .relaxed) }
        }
    }

    private func broadcast(_ name: String, _ object: [String: Any]) {
        guard let json = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        broadcast(LiveMessage(name: name, json: json))
    }

    // MARK: Relay events

    /// Hears the relay: hub and player changes become `stream` events; first bytes feed the p95.
    public func observe(_ event: RelayEvent) {
        switch event {
        case .hubStarted(let hub):
            state.withLock { $0.players[hub] = 0 }
            streamEvent("hub_started", hub)
        case .hubClosed(let hub, let reason):
            state.withLock { _ = $0.players.removeValue(forKey: hub) }
            var detail: [String: Any] = [:]
            switch reason {
            case .idle: detail["reason"] = "idle"
            case .relayStopping: detail["reason"] = "relay_stopping"
            case .failed(let code, let message): detail["reason"] = code; detail["message"] = message
            }
            streamEvent("hub_closed", hub, players: 0, detail)
        case .playerJoined(let hub):
            let players = state.withLock { state in
                state.players[hub, default: 0] += 1
                return state.players[hub] ?? 0
            }
            streamEvent("player_joined", hub, players: players)
        case .playerLeft(let hub):
            let players = state.withLock { state -> Int in
                // A failing hub's players leave after its `hubClosed`: an entry made again here would never go.
                guard let count = state.players[hub] else { return 0 }
                state.players[hub] = max(count - 1, 0)
                return state.players[hub] ?? 0
            }
            streamEvent("player_left", hub, players: players)
        case .streamStarted(let session):
            broadcast("stream", ["type": "stream_started", "content_id": session.content.value,
                                 "stream_id": StreamRecord.streamID(key: session.content.value, playbackSessionID: session.session.playbackSessionID), "container_id": session.engine.id])
        case .streamEnded(let session, let reason):
            broadcast("stream", ["type": "stream_ended", "content_id": session.content.value,
                                 "stream_id": StreamRecord.streamID(key: session.content.value, playbackSessionID: session.session.playbackSessionID), "reason": reason])
        case .firstByte(_, let seconds):
            firstBytes.withLock { $0.record(seconds, at: Date()) }
        default:
            break
        }
    }

    private func streamEvent(_ type: String, _ hub: HubID, players: Int? = nil, _ extra: [String: Any] = [:]) {
        var object = extra
        object["type"] = type
        object["content_id"] = hub.content.value
        object["hub"] = hub.description
        if let players { object["players"] = players }
        object["at"] = ISO8601DateFormatter().string(from: Date())
        broadcast("stream", object)
    }

    // MARK: VPN

    /// A VPN transition for the panel's events: `vpn` with `{type, message, connected, forwarded_port}`.
    public func announceVPN(kind: String, message: String, connected: Bool, forwardedPort: Int?) {
        broadcast("vpn", ["type": kind, "message": message, "connected": connected,
                          "forwarded_port": forwardedPort.map { $0 as Any } ?? NSNull()])
    }

    // MARK: Ticks

    /// One interval's work: the throughput since the last tick, `engine` events
    /// for health changes, and a `snapshot` for the connected clients.
    public func tick(plane: ControlPlane, now: Date = Date()) async {
        let totals = plane.relay?.totals()
        state.withLock { state in
            if let totals { state.lastRates = state.rates.rates(at: now, bytesIn: totals.bytesIn, bytesOut: totals.bytesOut) }
        }
        announceEngineChanges(plane.fleet.engines)
        guard clientCount > 0 else { return }
        guard let snapshot = try? await PanelSnapshot.build(plane: plane, live: self, now: now).encoded() else { return }
        broadcast(LiveMessage(name: "snapshot", json: snapshot))
    }

    private func announceEngineChanges(_ engines: [FleetEngine]) {
        let now = Dictionary(engines.map { ($0.id, $0.health.status.rawValue) }, uniquingKeysWith: { a, _ in a })
        let before = state.withLock { state in
            defer { state.engineHealth = now }
            return state.engineHealth
        }
        for (id, health) in now.sorted(by: { $0.key < $1.key }) where before[id] != health {
            var object: [String: Any] = ["type": before[id] == nil ? "engine_added" : "health_changed",
                                         "container_id": id, "health_status": health]
            if let previous = before[id] { object["previous"] = previous }
            broadcast("engine", object)
        }
        for id in before.keys.sorted() where now[id] == nil {
            broadcast("engine", ["type": "engine_removed", "container_id": id])
        }
    }
}

/// Bytes per second from monotonic byte totals read at intervals.
struct RateMeter {
    private var last: (at: Date, bytesIn: UInt64, bytesOut: UInt64)?

    /// The average rates since the previous reading (0 for the first).
    mutating func rates(at now: Date, bytesIn: UInt64, bytesOut: UInt64) -> (ingress: Double, egress: Double) {
        defer { last = (now, bytesIn, bytesOut) }
        guard let last, now > last.at else { return (0, 0) }
        let seconds = now.timeIntervalSince(last.at)
        // Totals only grow; a smaller reading (a new relay) counts from zero.
        let inDelta = bytesIn >= last.bytesIn ? bytesIn - last.bytesIn : bytesIn
        let outDelta = bytesOut >= last.bytesOut ? bytesOut - last.bytesOut : bytesOut
        return (Double(inDelta) / seconds, Double(outDelta) / seconds)
    }
}

/// Players' times to first byte over the last minute, in a bounded list.
struct FirstByteWindow {
    static let capacity = 512
    static let span: TimeInterval = 60
    private var entries: [(at: Date, seconds: Double)] = []

    mutating func record(_ seconds: Double, at now: Date) {
        entries.removeAll { now.timeIntervalSince($0.at) > Self.span }
        if entries.count >= Self.capacity { entries.removeFirst(entries.count - Self.capacity + 1) }
        entries.append((now, seconds))
    }

    func percentile95(now: Date) -> Double {
        let recent = entries.filter { now.timeIntervalSince($0.at) <= Self.span }.map(\.seconds).sorted()
        guard !recent.isEmpty else { return 0 }
        let index = min(recent.count - 1, Int((0.95 * Double(recent.count - 1)).rounded()))
        return recent[index]
    }
}
