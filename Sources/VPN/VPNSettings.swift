import Foundation

/// How acerelay reaches Gluetun, with the orchestrator's variable names.
public struct VPNSettings: Sendable, Equatable {
    /// `GLUETUN_CONTAINER_NAME`: the Gluetun container; engines join its network stack.
    public var containerName: String
    /// `GLUETUN_API_URL`, default `http://<container>:<GLUETUN_API_PORT>`: Gluetun's control server.
    public var controlURL: String
    /// `GLUETUN_API_KEY`, sent as `X-API-Key`; never logged, never shown.
    public var apiKey: String?
    /// `GLUETUN_HEALTH_CHECK_INTERVAL_S`: seconds between checks.
    public var checkInterval: TimeInterval
    /// `VPN_RESTART_ENGINES_ON_RECONNECT`: restart engines (make-before-break) once the tunnel is back and stable.
    public var restartEnginesOnReconnect: Bool
    /// Up checks in a row after an outage before the tunnel counts as stable again.
    public var stableChecks: Int
    /// Time allowed for each control-server request; short, so a hung Gluetun only delays the next check.
    public var requestTimeout: Duration

    public init(containerName: String, controlURL: String, apiKey: String? = nil, checkInterval: TimeInterval = 5,
                restartEnginesOnReconnect: Bool = false, stableChecks: Int = 3, requestTimeout: Duration = .seconds(2)) {
        self.containerName = containerName
        self.controlURL = controlURL.hasSuffix("/") ? String(controlURL.dropLast()) : controlURL
        self.apiKey = apiKey
        self.checkInterval = checkInterval
        self.restartEnginesOnReconnect = restartEnginesOnReconnect
        self.stableChecks = max(stableChecks, 1)
        self.requestTimeout = requestTimeout
    }

    /// The control server's default address for a container and port, as the orchestrator builds it.
    public static func defaultControlURL(container: String, port: Int) -> String { "http://\(container):\(port)" }
}
