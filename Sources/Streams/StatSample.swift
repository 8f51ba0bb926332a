import Foundation

/// One reading of a session's `stat_url`.
public struct StatSample: Sendable, Equatable, Codable {
    public var at: Date
    public var peers: Int?
    /// KB/s, as the engine reports them.
    public var speedDown: Int?
    public var speedUp: Int?
    /// Bytes.
    public var downloaded: Int64?
    public var uploaded: Int64?
    /// `prebuf`, `dl`, ... as the engine says.
    public var status: String?
    public var livepos: Livepos?

    /// The live window, in Unix seconds (the engine sends them as strings).
    public struct Livepos: Sendable, Equatable, Codable {
        public var pos: Int64?
        public var liveFirst: Int64?
        public var liveLast: Int64?
        public var firstTS: Int64?
        public var lastTS: Int64?
        public var bufferPieces: Int?
    }
}
