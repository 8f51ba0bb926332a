/// A container's state as the daemon names it (`created`, `running`, `exited`, ...).
///
/// A struct over the raw string rather than a closed enum, so a state a future
/// daemon adds is carried through instead of failing the decode.
public struct ContainerState: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    /// The daemon's word, lower-cased.
    public var rawValue: String

    /// Wraps the daemon's word; case is ignored.
    public init(rawValue: String) { self.rawValue = rawValue.lowercased() }

    /// Created and never started.
    public static let created = ContainerState(rawValue: "created")
    /// The command runs.
    public static let running = ContainerState(rawValue: "running")
    /// Frozen by `pause`; acerelay never pauses, so this means someone else did.
    public static let paused = ContainerState(rawValue: "paused")
    /// Between runs under a restart policy.
    public static let restarting = ContainerState(rawValue: "restarting")
    /// Being removed.
    public static let removing = ContainerState(rawValue: "removing")
    /// Stopped, or its command ended; see `ContainerDetails.exitCode`.
    public static let exited = ContainerState(rawValue: "exited")
    /// Failed to stop or be removed; only `removeContainer(force: true)` helps.
    public static let dead = ContainerState(rawValue: "dead")

    public var description: String { rawValue }
}
