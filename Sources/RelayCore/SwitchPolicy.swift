/// When a channel player must leave its source, and whether it may switch now.
/// Pure decisions on what the player sees of its hub, in loop time, so tests
/// drive it with a manual clock.
///
/// A source fails when its hub failed or closed, when the same-session
/// reconnect failed outright (the engine is gone), or when no stream packet
/// arrived for `failoverAfter` seconds while the hub was live — an engine EOF
/// the reconnect does not cure in that time, or a stall. A hub still starting
/// is left to its own start timeout. Switches are capped at
/// `maxSwitchesPerMinute` in any sliding minute.
struct SwitchPolicy {
    /// What the player sees of its hub at one moment.
    struct Observation: Equatable {
        var phase: HubPhase
        var upstream: HubUpstream
        /// Stream packets the hub took in since it opened; grows while data flows.
        var packets: UInt64
        /// The hub's failure code once it failed (`stream_looping`, `engine_lost`, ...).
        var failureCode: String?
    }

    enum Verdict: Equatable {
        case healthy
        case failed(ChannelSwitchReason)
    }

    let failoverAfter: Double
    let maxSwitchesPerMinute: Int
    private var switchTimes: [Double] = []
    private var lastPackets: UInt64 = 0
    /// Loop time packets last advanced (or the source was attached).
    private var lastProgressAt: Double = 0

    init(failoverAfter: Double, maxSwitchesPerMinute: Int) {
        self.failoverAfter = failoverAfter
        self.maxSwitchesPerMinute = maxSwitchesPerMinute
        switchTimes.reserveCapacity(max(maxSwitchesPerMinute, 1))
    }

    /// A source was attached: silence is counted from now.
    mutating func attached(packets: UInt64, at now: Double) {
        lastPackets = packets
        lastProgressAt = now
    }

    /// Whether the current source still serves the player.
    mutating func judge(_ seen: Observation, at now: Double) -> Verdict {
        switch seen.phase {
        case .failed:
            return .failed(seen.failureCode == "stream_looping" ? .looping : .hubFailed)
        case .closed:
            return .failed(.hubClosed)
        case .starting:
            lastProgressAt = now
            lastPackets = seen.packets
            return .healthy
        case .streaming:
            break
        }
        if seen.packets != lastPackets {
            lastPackets = seen.packets
            lastProgressAt = now
        }
        switch seen.upstream {
        case .reconnectFailed:
            return .failed(.engineLost)
        case .reconnecting where now - lastProgressAt >= failoverAfter:
            return .failed(.eof)
        case .flowing where now - lastProgressAt >= failoverAfter:
            return .failed(.stalled)
        case .reconnecting, .flowing:
            return .healthy
        }
    }

    /// True when one more switch stays within the limit of the last minute.
    func maySwitch(at now: Double) -> Bool {
        switchTimes.filter { now - $0 < 60 }.count < maxSwitchesPerMinute
    }

    /// Loop time the next switch becomes allowed; nil while one is allowed now.
    func nextSwitchAllowed(at now: Double) -> Double? {
        let recent = switchTimes.filter { now - $0 < 60 }
        guard recent.count >= maxSwitchesPerMinute, let oldest = recent.first else { return nil }
        return oldest + 60
    }

    /// A switch happened now.
    mutating func switched(at now: Double) {
        switchTimes.removeAll { now - $0 >= 60 }
        switchTimes.append(now)
    }
}
