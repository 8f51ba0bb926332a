import Foundation

/// What provisioning may still spend: host ports, the circuit breaker's
/// permission, and room under `MAX_REPLICAS` counting engines on their way.
///
/// An attempt takes a `Reservation` (ports, one pending engine), then either
/// commits it (the container runs and the engine is registered) or rolls it back
/// (ports freed, the failure counted by the breaker). Kept under the
/// provisioner's lock, so two attempts never take the same port or overbook.
struct ProvisioningBudget {
    /// The host ports one attempt holds.
    struct Reservation: Equatable {
        var httpPort: Int
        var apiPort: Int
    }

    var ports: PortAllocator
    var breaker: CircuitBreaker
    let maxReplicas: Int
    /// Containers being created now; they count as capacity already.
    private(set) var pending = 0
    /// Provisions the demand hook asked for that have not begun yet.
    private(set) var requested = 0
    private(set) var succeeded: UInt64 = 0
    private(set) var failed: UInt64 = 0
    private(set) var lastError: String?

    init(ports: ClosedRange<Int>, breakerThreshold: Int, breakerCooldown: TimeInterval, maxReplicas: Int) {
        self.ports = PortAllocator(range: ports)
        breaker = CircuitBreaker(failureThreshold: breakerThreshold, cooldown: breakerCooldown)
        self.maxReplicas = maxReplicas
    }

    /// Why a new engine cannot be created now, or nil.
    func refusal(now: Date, managedCount: Int) -> ProvisioningError? {
        if breaker.state(at: now) == .open {
            let eta = breaker.secondsUntilRetry(at: now)
            return ProvisioningError(code: "circuit_breaker",
                                     message: "provisioning paused after \(breaker.consecutiveFailures) failures in a row (last: \(lastError ?? "unknown")); retrying in \(eta) s",
                                     recoveryETASeconds: eta, canRetry: true, shouldWait: true)
        }
        if managedCount + pending >= maxReplicas {
            return ProvisioningError(code: "max_capacity",
                                     message: "MAX_REPLICAS (\(maxReplicas)) engines already exist and all are busy",
                                     recoveryETASeconds: 30, canRetry: true, shouldWait: true)
        }
        return nil
    }

    /// Counts one provision the demand hook started, before it begins.
    mutating func request() { requested += 1 }

    /// A provision the demand hook counted will not begin (an outside blocker
    /// or no Docker host answering refused it before `reserve`).
    mutating func cancelRequest() { requested = max(requested - 1, 0) }

    /// Takes ports (`requestedPort` for HTTP when given) and one pending engine, or
    /// says why not: the breaker is open or allows no attempt now, `MAX_REPLICAS`
    /// is reached counting pending engines, or no port is free.
    /// `forDemand`: the attempt was counted by `request()`; it stops being requested here either way.
    mutating func reserve(requestedPort: Int?, forDemand: Bool, managedCount: Int,
                          now: Date) -> Result<Reservation, ProvisioningError> {
        if forDemand { requested -= 1 }
        if let refused = refusal(now: now, managedCount: managedCount) { return .failure(refused) }
        var allocator = ports
        guard breaker.allowAttempt(at: now),
              requestedPort.map({ allocator.claim($0) }) ?? true,
              let http = requestedPort ?? allocator.allocate(), let api = allocator.allocate() else {
            return .failure(ProvisioningError(
                code: "general_error",
                message: requestedPort.map { "host port \($0) is already in use" } ?? "no free host port left in PORT_RANGE_HOST \(ports.range)",
                recoveryETASeconds: 30, canRetry: true, shouldWait: false))
        }
        ports = allocator
        pending += 1
        return .success(Reservation(httpPort: http, apiPort: api))
    }

    /// The attempt's engine runs and is registered: it keeps its ports and is no longer pending.
    mutating func commit(_ reservation: Reservation) {
        breaker.recordSuccess()
        succeeded += 1
        pending -= 1
    }

    /// The attempt failed: its ports go back and the breaker counts the failure,
    /// unless `countedByBreaker` is false (no Docker host answered: that outage is
    /// reported per host, and pausing would only delay the first try once one is back).
    mutating func rollback(_ reservation: Reservation, error: String, countedByBreaker: Bool = true, now: Date) {
        failed += 1
        if countedByBreaker {
            breaker.recordFailure(at: now)
            lastError = error
        }
        ports.release(reservation.httpPort)
        ports.release(reservation.apiPort)
        pending -= 1
    }
}
