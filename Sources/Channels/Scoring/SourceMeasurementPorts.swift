/// Where measurements of channel sources go: the channel service scores each
/// one, reorders the channels holding that source, and tells Dispatcharr.
/// Implemented by the channel service; called by the prober and by the
/// watcher of hubs that players keep open.
public protocol SourceMeasurementSink: Sendable {
    /// Records one finished measurement of `contentID` (40 lowercase hex).
    func record(contentID: String, measurement: SourceMeasurement) async
}

/// Which sources should be measured, and when each was last: the prober
/// asks this each round. Implemented by the channel service over the store.
public protocol SourceCatalog: Sendable {
    /// Every source of every channel, once each, with the time of its last
    /// measurement (nil if never measured).
    func sourcesToMeasure() async -> [SourceDue]
}

/// One source the prober may measure.
public struct SourceDue: Sendable, Equatable {
    public var contentID: String
    public var lastMeasuredAt: Double?

    public init(contentID: String, lastMeasuredAt: Double?) {
        self.contentID = contentID
        self.lastMeasuredAt = lastMeasuredAt
    }
}
