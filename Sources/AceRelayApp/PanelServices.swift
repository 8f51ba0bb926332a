import ControlAPI
import Foundation
import Logging
import ServiceLifecycle

/// The panel's periodic work: live-update ticks (snapshots and engine events
/// for SSE clients) and the dashboard's samples in the store. Both are
/// auxiliary: failing, they leave the relay and the API serving.
enum PanelServices {
    /// Seconds between dashboard samples.
    static let sampleInterval: Double = 5

    static func make(plane: ControlPlane, live: LiveUpdates, interval: Double, logger: Logger) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        let sampler = DashboardSampler(plane: plane)
        return [
            ServicePolicy.auxiliary(LiveUpdatesService(live: live, plane: plane, interval: interval)),
            ServicePolicy.auxiliary(PeriodicService(description: "dashboard samples", interval: sampleInterval,
                                                    failure: "cannot store dashboard samples", logger: logger) {
                try await sampler.sampleOnce()
            }),
        ]
    }
}

/// Ticks the live updates every `interval` seconds; at shutdown ends every open
/// `GET /events/live` response, so the control API's connections can close.
struct LiveUpdatesService: Service, CustomStringConvertible {
    let live: LiveUpdates
    let plane: ControlPlane
    let interval: Double
    var description: String { "live updates" }

    func run() async {
        defer { live.finishAll() }
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            await live.tick(plane: plane)
            try? await cancelWhenGracefulShutdown {
                try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
            }
        }
    }
}
