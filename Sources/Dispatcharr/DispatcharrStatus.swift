import Foundation

/// Dispatcharr's part of `/orchestrator/status`: whether it is set up, answering,
/// when channels were last read, the last problem, and the write queue.
public struct DispatcharrStatus: Sendable, Equatable, Codable {
    /// Whether `DISPATCHARR_BASE_URL` is set.
    public var configured: Bool
    /// Whether the latest exchange with Dispatcharr got an answer.
    public var reachable: Bool
    /// When channels were last read successfully.
    public var lastSyncAt: Date?
    /// The latest failure of a sync or a write, one line; a successful sync clears it.
    public var lastError: String?
    /// Channels acerelay manages (those with at least one AceStream stream, in the configured groups).
    public var managedChannels: Int
    /// Writes queued or being sent, retries included.
    public var pendingWrites: Int
    /// False when `DISPATCHARR_REORDER=false`: writes are recorded, not sent.
    public var reorder: Bool
    /// Writes Dispatcharr accepted since start.
    public var writesDone: Int
    /// Writes given up on (not retryable, or out of attempts) since start.
    public var writesFailed: Int

    /// A status as given.
    public init(configured: Bool, reachable: Bool, lastSyncAt: Date? = nil, lastError: String? = nil,
                managedChannels: Int = 0, pendingWrites: Int = 0, reorder: Bool = true,
                writesDone: Int = 0, writesFailed: Int = 0) {
        self.configured = configured
        self.reachable = reachable
        self.lastSyncAt = lastSyncAt
        self.lastError = lastError
        self.managedChannels = managedChannels
        self.pendingWrites = pendingWrites
        self.reorder = reorder
        self.writesDone = writesDone
        self.writesFailed = writesFailed
    }

    /// The status when Dispatcharr is not configured.
    public static let notConfigured = DispatcharrStatus(configured: false, reachable: false, reorder: false)

    enum CodingKeys: String, CodingKey {
        case configured, reachable, reorder
        case lastSyncAt = "last_sync_at"
        case lastError = "last_error"
        case managedChannels = "managed_channels"
        case pendingWrites = "pending_writes"
        case writesDone = "writes_done"
        case writesFailed = "writes_failed"
    }
}
