import Locking

/// Reasons from outside the fleet why no engine may be created now (the VPN
/// being down), consulted in one place by the provisioner: before it creates a
/// container, when a request waits for one, and in its status.
public final class ProvisioningBlockers: Sendable {
    private let providers = Locked<[(name: String, reason: @Sendable () -> ProvisioningError?)]>([])

    public init() {}

    /// Adds a provider; `reason` answers why provisioning must wait, or nil. It must only read state, never wait.
    public func add(_ name: String, _ reason: @escaping @Sendable () -> ProvisioningError?) {
        providers.withLock { $0.append((name, reason)) }
    }

    /// The first provider's reason, or nil when none blocks.
    public var current: ProvisioningError? {
        let providers = providers.withLock { $0 }
        for provider in providers {
            if let reason = provider.reason() { return reason }
        }
        return nil
    }
}
