import Foundation

/// Decides whether a URL another proxy reported (`stat_url`, `command_url` of
/// `POST /events/stream_started`) may be called: only when it points at an engine
/// of the fleet, unless `ALLOW_FOREIGN_ENGINE_URLS` says otherwise.
///
/// Checked when the URL is about to be called, not only when it was reported, so
/// an engine removed since is no longer a target. A refused URL stays stored and
/// shown; it is only never fetched.
public struct EngineURLPolicy: Sendable {
    private let fleet: EngineFleet
    /// `ALLOW_FOREIGN_ENGINE_URLS`: call reported URLs whatever their host.
    public let allowsForeignHosts: Bool

    public init(fleet: EngineFleet, allowsForeignHosts: Bool = false) {
        self.fleet = fleet
        self.allowsForeignHosts = allowsForeignHosts
    }

    /// Nil when `url` may be called; otherwise why not, in one line.
    public func refusal(for url: String) -> String? {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = parts.host?.lowercased(), !host.isEmpty else {
            return "not an http(s) URL with a host"
        }
        if allowsForeignHosts { return nil }
        let port = parts.port ?? (scheme == "https" ? 443 : 80)
        let known = fleet.engines.contains { engine in
            if let base = URLComponents(string: engine.endpoint.baseURL), base.host?.lowercased() == host,
               (base.port ?? (base.scheme == "https" ? 443 : 80)) == port {
                return true
            }
            return engine.host.lowercased() == host && engine.port == port
        }
        return known ? nil : "\(host):\(port) is not an engine of this fleet; set ALLOW_FOREIGN_ENGINE_URLS=true to call it"
    }
}
