import ServiceLifecycle

/// What the service group does when each of the composition's services ends,
/// chosen on purpose: the relay (started before the group, stopped after it)
/// outlives every control-plane service, and only the control API failing to
/// open its port stops acerelay.
enum ServicePolicy {
    /// Periodic work, loop detection, the stats collector: when one ends or
    /// throws, it is logged (by the service) and the rest keep running.
    static func auxiliary(_ service: any Service) -> ServiceGroupConfiguration.ServiceConfiguration {
        .init(service: service, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore)
    }

    /// The control API throws only when it could not start (`StartFailure`):
    /// then the group shuts down and `serve` exits non-zero.
    static func controlAPI(_ service: ControlAPIService) -> ServiceGroupConfiguration.ServiceConfiguration {
        .init(service: service, successTerminationBehavior: .ignore, failureTerminationBehavior: .gracefullyShutdownGroup)
    }

    /// The watch holds the group open until SIGTERM or SIGINT; it goes last
    /// in the list, so the group (stopping in reverse order) tells it first.
    static func shutdownWatch(_ service: ShutdownWatchService) -> ServiceGroupConfiguration.ServiceConfiguration {
        .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
    }
}
