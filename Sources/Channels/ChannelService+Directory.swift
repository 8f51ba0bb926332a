import RelayCore

extension ChannelService: ChannelDirectory {
    /// The channel's sources best first, failed ones left out; from memory, for relay loops.
    public nonisolated func sources(ofChannel channelID: String) -> [ContentKey]? {
        directory.withLock { $0[channelID] }
    }

    /// Leaves the source out of every channel's list at once, then records the
    /// failure as a measurement (score 0, with the reason) off the relay loop, so
    /// the channels holding it are reordered and Dispatcharr hears of it. It comes
    /// back once a probe measures it working again.
    public nonisolated func sourceFailed(_ source: ContentKey, ofChannel channelID: String, reason: ChannelSwitchReason) {
        reportedFailures.withLock { _ = $0.insert(source.value) }
        directory.withLock { channels in
            for (id, sources) in channels where sources.contains(source) {
                channels[id] = sources.filter { $0 != source }
            }
        }
        let failure = Self.failure(reason)
        Task {
            await self.record(contentID: source.value, measurement: SourceMeasurement(failure: failure))
            // Recorded: the source's own status keeps it out from here on.
            _ = self.reportedFailures.withLock { $0.remove(source.value) }
        }
    }

    /// How a channel switch's reason reads as a measurement's failure.
    public static func failure(_ reason: ChannelSwitchReason) -> SourceFailure {
        switch reason {
        case .stalled, .eof: .stalled
        case .looping: .looping
        case .engineLost, .hubFailed, .hubClosed: .failedOver
        }
    }
}
