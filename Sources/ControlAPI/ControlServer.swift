import Foundation
import Hummingbird
import Logging

/// The request context every control route runs with.
typealias APIContext = BasicRequestContext

/// One resource of the control API: registers its open routes and its
/// key-protected routes on the groups it is given (once per prefix).
protocol APIController: Sendable {
    func register(open: RouterGroup<APIContext>, protected: RouterGroup<APIContext>)
}

/// The control port: the orchestrator's REST API (every route also under
/// `/api/v1`), errors as `{"detail": ...}`, Prometheus `/metrics`, and a
/// redirect of `/ace/getstream` to the stream port for playlists that point here.
public enum ControlServer {
    /// The route prefixes; the orchestrator serves each route under both.
    static let prefixes = ["", "/api/v1"]

    /// Builds the HTTP application; run it as a service. `onListening` gets the bound port.
    public static func application(plane: ControlPlane, host: String, port: Int, logger: Logger,
                                   onListening: @escaping @Sendable (Int) -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            router: router(plane: plane),
            configuration: .init(address: .hostname(host, port: port), serverName: "acerelay"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    /// Every controller's routes under each prefix, the key check on the protected groups.
    static func router(plane: ControlPlane) -> Router<APIContext> {
        let router = Router(context: APIContext.self)
        router.add(middleware: APIErrorMiddleware())
        router.add(middleware: ConcurrencyLimitMiddleware(limit: plane.maxConcurrentRequests, inFlight: plane.requestsInFlight))
        let controllers: [any APIController] = [
            EnginesController(plane: plane),
            StreamsController(plane: plane),
            EventsController(plane: plane),
            ProvisioningController(plane: plane),
            LoopingStreamsController(plane: plane),
            OrchestratorController(plane: plane),
            MetricsController(plane: plane),
            AceRedirectController(plane: plane),
            ChannelsController(plane: plane),
            PlaylistController(plane: plane),
            PanelController(plane: plane),
            DashboardController(plane: plane),
            VPNController(plane: plane),
        ]
        let check = APIKeyCheck(key: plane.apiKey)
        for prefix in prefixes {
            let open = router.group(RouterPath(prefix))
            let protected = router.group(RouterPath(prefix)).add(middleware: APIKeyMiddleware<APIContext>(check: check))
            for controller in controllers { controller.register(open: open, protected: protected) }
        }
        return router
    }
}
