import Foundation
import VPN

extension SettingReader {
    /// `true`/`false` (also `1`/`0`, `yes`/`no`), or the default when unset.
    func bool(option: String, env: String, default value: Bool) throws(SettingError) -> Bool {
        guard let text = raw(nil, env: env)?.lowercased() else { return value }
        switch text {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw SettingError(option: option, environment: nil, value: text, expected: "true or false")
        }
    }

    /// The Gluetun settings, the orchestrator's names; nil without `GLUETUN_CONTAINER_NAME`.
    func vpnSettings() throws(SettingError) -> VPNSettings? {
        guard let container = raw(nil, env: "GLUETUN_CONTAINER_NAME")?.trimmingCharacters(in: .whitespaces), !container.isEmpty else {
            return nil
        }
        let port = try int(nil, option: "GLUETUN_API_PORT", env: "GLUETUN_API_PORT", default: 8001, range: 1...65_535)
        let url = raw(nil, env: "GLUETUN_API_URL")?.trimmingCharacters(in: .whitespaces)
            ?? VPNSettings.defaultControlURL(container: container, port: port)
        guard let parts = URLComponents(string: url), ["http", "https"].contains(parts.scheme?.lowercased() ?? ""),
              parts.host?.isEmpty == false else {
            throw SettingError(option: "GLUETUN_API_URL", environment: nil, value: url, expected: "Gluetun's control server, like http://gluetun:8001")
        }
        return VPNSettings(
            containerName: container, controlURL: url,
            apiKey: raw(nil, env: "GLUETUN_API_KEY"),
            checkInterval: try double(nil, option: "GLUETUN_HEALTH_CHECK_INTERVAL_S", env: "GLUETUN_HEALTH_CHECK_INTERVAL_S",
                                      default: 5, range: 0.2...3_600),
            restartEnginesOnReconnect: try bool(option: "VPN_RESTART_ENGINES_ON_RECONNECT", env: "VPN_RESTART_ENGINES_ON_RECONNECT",
                                                default: false))
    }
}
