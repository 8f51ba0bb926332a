import Foundation

/// How the fleet runs, with the orchestrator's variable names and defaults
/// (see shared/reference/compatibility.md), so existing deployments keep their settings.
public struct FleetConfiguration: Sendable {
    /// Engine image; the orchestrator's default, `-arm64` on ARM.
    public var image = FleetConfiguration.defaultImage
    /// `CONTAINER_LABEL` (`key=value`) put on every engine container acerelay creates.
    public var containerLabel = (key: "ondemand.app", value: "myservice")
    public var minReplicas = 2
    public var minFreeReplicas = 1
    public var maxReplicas = 6
    public var maxStreamsPerEngine = 3
    public var engineGracePeriod: TimeInterval = 30
    public var autoDelete = true
    public var portRange: ClosedRange<Int> = 19000...19999
    public var startupTimeout: TimeInterval = 25
    public var healthCheckInterval: TimeInterval = 20
    public var healthCheckTimeout: TimeInterval = 5
    public var healthFailureThreshold = 3
    public var unhealthyGracePeriod: TimeInterval = 60
    /// How often containers are listed to find engines that died or appeared.
    public var reconcileInterval: TimeInterval = 10
    /// `host` (the engine binds its own port), `bridge` (ports published), or `container:<vpn>`.
    public var networkMode = "bridge"
    /// Address players' relay uses to reach engines with published ports.
    public var engineHost = "127.0.0.1"
    /// Port the engine's HTTP API listens on inside its container.
    public var containerHTTPPort = 6878
    /// Provisioning failures in a row before the circuit breaker opens, and its cooldown.
    public var circuitBreakerThreshold = 5
    public var circuitBreakerCooldown: TimeInterval = 60

    public init() {}

    public static var defaultImage: String {
        #if arch(arm64)
        return "ghcr.io/krinkuto11/acestream:latest-arm64"
        #else
        return "ghcr.io/krinkuto11/acestream:latest-amd64"
        #endif
    }

    /// The engine command: the flags engine containers are usually started with.
    public func engineCommand(httpPort: Int, apiPort: Int, p2pPort: Int?) -> [String] {
        var command = ["python", "main.py", "--bind-all", "--live-cache-type", "memory", "--live-mem-cache-size", "52428800",
                       "--live-buffer", "25", "--disable-sentry", "--log-stdout", "--disable-upnp",
                       "--http-port", String(httpPort), "--api-port", String(apiPort)]
        if let p2pPort { command += ["--port", String(p2pPort)] }
        return command
    }
}
