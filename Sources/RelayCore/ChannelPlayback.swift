import Logging

/// The channel side of one `/ace/channel/{id}` player: which source it plays,
/// when that source has failed it, and where it goes next — on the same
/// connection, which `ClientConnection` keeps streaming.
///
/// Loop-confined to the player's worker. A quarter-second timer judges the
/// current hub with `SwitchPolicy`; a hub that fails or closes is judged at
/// once (the connection calls `sourceEnded`). With no source to go to, or the
/// switch limit reached, the player gets null packets and a source is looked
/// for again each tick, until `reconnectTimeout` passes and it is closed.
final class ChannelPlayback {
    let channelID: String
    private unowned let connection: ClientConnection
    private unowned let worker: Worker
    private var policy: SwitchPolicy
    /// The source chosen; nil while the player waits without one.
    private(set) var current: ContentKey?
    /// Why the player left its last source, for a switch out of waiting.
    private var lastReason: ChannelSwitchReason = .stalled
    /// Loop time the player began waiting without a source.
    private var waitingSince: Double?
    private var lastKeepaliveAt: Double = 0
    private var timer: TimerWatcher!
    private var finished = false

    private var server: RelayServer { worker.server }
    private var now: Double { worker.loop.now }

    init(channelID: String, connection: ClientConnection, worker: Worker) {
        self.channelID = channelID
        self.connection = connection
        self.worker = worker
        let configuration = worker.server.configuration
        policy = SwitchPolicy(failoverAfter: configuration.channelFailoverAfter,
                              maxSwitchesPerMinute: configuration.channelMaxSwitchesPerMinute)
        timer = TimerWatcher(loop: worker.loop) { [unowned self] in self.tick() }
    }

    /// Picks the first working source; nil when the channel has none.
    func begin() -> ContentKey? {
        server.channelLedger.joined(channelID)
        server.standbys.playerJoined(channelID)
        timer.schedule(after: 0.25, every: 0.25)
        guard let first = nextSource() else { return nil }
        use(first)
        return first
    }

    /// The connection closed.
    func finish() {
        guard !finished else { return }
        finished = true
        timer.cancel()
        server.channelLedger.left(channelID)
        server.standbys.playerLeft(channelID)
    }

    /// The connection found its hub failed or closed.
    func sourceEnded() {
        judge()
    }

    // MARK: Internals

    private func tick() {
        guard !finished else { return }
        guard current != nil else {
            waitForSource()
            return
        }
        if connection.awaitsJoinPoint, now - lastKeepaliveAt >= 1 {
            lastKeepaliveAt = now
            connection.sendKeepalive()
        }
        judge()
    }

    private func judge() {
        guard !finished, current != nil, let hub = connection.settledHub else { return }
        let seen = SwitchPolicy.Observation(phase: hub.phase, upstream: hub.upstreamCondition,
                                            packets: hub.packetsReceived, failureCode: hub.failure?.code)
        guard case .failed(let reason) = policy.judge(seen, at: now) else { return }
        leave(reason)
    }

    /// The current source failed the player: report it and move on.
    private func leave(_ reason: ChannelSwitchReason) {
        guard let source = current else { return }
        guard server.isAccepting else {
            // The relay is stopping: that says nothing of the source.
            connection.close()
            return
        }
        worker.logger.warning("channel source failed; switching", metadata: [
            "relay.channel": "\(channelID)", "relay.content": "\(source)", "relay.reason": "\(reason.rawValue)"])
        lastReason = reason
        // A hub closes without failing only when idle or stopping: no fault of the source.
        if reason != .hubClosed { server.channels?.sourceFailed(source, ofChannel: channelID, reason: reason) }
        if let next = nextSource(), policy.maySwitch(at: now) {
            switchTo(next, reason: reason)
        } else {
            current = nil
            waitingSince = now
            server.channelLedger.playing(channelID, source: nil)
            connection.move(to: nil)
        }
    }

    /// No source: keepalives each second, a new source as soon as one works and
    /// the limit allows, a close once the reconnect timeout passed.
    private func waitForSource() {
        let since = waitingSince ?? now
        if now - lastKeepaliveAt >= 1 {
            lastKeepaliveAt = now
            connection.sendKeepalive()
        }
        if policy.maySwitch(at: now), let next = nextSource() {
            waitingSince = nil
            switchTo(next, reason: lastReason)
            return
        }
        if now - since >= server.configuration.reconnectTimeout {
            worker.logger.warning("no working source for a channel player; closing it", metadata: ["relay.channel": "\(channelID)"])
            connection.close()
        }
    }

    private func switchTo(_ next: ContentKey, reason: ChannelSwitchReason) {
        policy.switched(at: now)
        server.channelLedger.switched(channelID, to: next, reason: reason)
        use(next)
        connection.move(to: next)
    }

    /// Makes `source` the current one; the connection attaches its hub.
    private func use(_ source: ContentKey) {
        current = source
        policy.attached(packets: 0, at: now)
        server.channelLedger.playing(channelID, source: source)
    }

    /// The connection attached the source's hub: silence counts from its packets
    /// now, and the source after it is kept warm. Only now: letting go of a
    /// standby that is about to be played, before the player holds it, could close it.
    func attached(_ hub: Hub) {
        policy.attached(packets: hub.packetsReceived, at: now)
        guard server.configuration.channelWarmStandby else { return }
        let standby = candidates().first { $0 != hub.key }
        server.standbys.want(standby, for: channelID, on: worker)
    }

    private func nextSource() -> ContentKey? { candidates().first }

    /// Working sources in the directory's order, without those the content gate
    /// refuses (looping). A source reported failed is left out by the directory
    /// itself until it measures well again, so it is not remembered here.
    private func candidates() -> [ContentKey] {
        let sources = server.channels?.sources(ofChannel: channelID) ?? []
        return sources.filter { server.contentGate?.refusal(for: $0) == nil }
    }
}
