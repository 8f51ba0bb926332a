import EngineFleet
import Foundation
import RelayCore

/// Every setting `serve` needs, resolved and validated before anything starts,
/// so a bad value stops start-up with one line.
struct ServeSettings {
    var level: LogLevelSetting
    var relay: RelayConfiguration
    var engineURLs: [String]
    var apiAddress: (host: String, port: UInt16)
    var dataDirectory: String
    var provisioning: Bool
    var fleet: FleetConfiguration
    var apiKey: String?

    init(relay options: RelayOptions, control: ControlOptions, engines: [String], environment: [String: String]) throws(SettingError) {
        level = try options.level(environment: environment)
        relay = try options.relayConfiguration(environment: environment)
        engineURLs = try SettingReader(environment: environment).engineURLs(engines, option: "--engine", env: "ACERELAY_ENGINES")
        apiAddress = try control.apiAddress(environment: environment)
        dataDirectory = control.dataDirectory(environment: environment)
        provisioning = try control.provisioningEnabled(environment: environment)
        fleet = try control.fleetConfiguration(environment: environment, relay: options)
        // Static engines are the user's own: no per-engine limit unless asked for.
        if !provisioning, options.maxStreamsPerEngine == nil, environment["MAX_STREAMS_PER_ENGINE"] == nil {
            fleet.maxStreamsPerEngine = 0
        }
        apiKey = environment["API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
    }
}
