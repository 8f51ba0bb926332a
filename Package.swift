// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "acerelay",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "acerelay", targets: ["acerelay"]),
        .executable(name: "acestream-engine-sim", targets: ["EngineSimulatorTool"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
    ],
    targets: [
        // Forwarders for what Swift cannot call: libev macros, libcurl's variadic
        // setopt/getinfo, and _GNU_SOURCE-only syscalls. No logic lives here.
        .target(
            name: "CSupport",
            path: "CSupport",
            linkerSettings: [.linkedLibrary("ev"), .linkedLibrary("curl")]
        ),
        // The one HTTP client layer over libcurl: one global init, one easy-handle set-up
        // (http/https only, bounded body and headers, time limits), one outcome type, and
        // the control plane's client on a thread of its own.
        .target(name: "CurlHTTP", dependencies: ["Locking", "CSupport"]),
        // The data plane: libev loops, hubs, the memfd history and sendfile fan-out.
        .target(
            name: "RelayCore",
            dependencies: [
                "Locking",
                "CSupport",
                "CurlHTTP",
                "ProxyProtocol",
                "StreamFacts",
                "PersistentConditions",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Docker Engine API client on CurlHTTP (unix socket or tcp), for engine containers.
        .target(
            name: "DockerEngine",
            dependencies: ["CurlHTTP", .product(name: "Logging", package: "swift-log")]
        ),
        // SQLite persistence (GRDB, WAL): engines, streams, events, settings.
        .target(name: "Store", dependencies: ["Locking", .product(name: "GRDB", package: "GRDB.swift"), "PersistentConditions",
                                             .product(name: "Logging", package: "swift-log")]),
        // A value behind a pthread mutex: Synchronization.Mutex's shape, visible to ThreadSanitizer.
        .target(name: "Locking"),
        // The control plane's clock, injected so tests move time by hand.
        .target(name: "Clocks", dependencies: ["Locking"]),
        // Logging a condition that persists (begins, periodic summary, ends) instead of once per retry.
        .target(
            name: "PersistentConditions",
            dependencies: ["Locking", "Clocks", .product(name: "Logging", package: "swift-log")]
        ),
        // The engine fleet: registry and selection, health, provisioning (container
        // template, budget, reconciler), ports, circuit breaker.
        .target(
            name: "EngineFleet",
            dependencies: ["Locking", "RelayCore", "Store", "DockerEngine", "CurlHTTP", "Clocks", "PersistentConditions", "VPN",
                           .product(name: "Logging", package: "swift-log")]
        ),
        // Watches Gluetun (the VPN engines run behind): tunnel health and the forwarded port.
        .target(
            name: "VPN",
            dependencies: ["Locking", "CurlHTTP", "Clocks", .product(name: "Logging", package: "swift-log")]
        ),
        // What happens to streams once they run: stats polling and parsing, loop detection.
        .target(
            name: "Streams",
            dependencies: ["Locking", "RelayCore", "Store", "CurlHTTP", "Clocks", "PersistentConditions",
                           .product(name: "Logging", package: "swift-log")]
        ),
        // Dispatcharr's REST API (channels, stream order, stream_stats) and the sync that
        // reads its channels and writes back acerelay's orders and stream facts.
        .target(
            name: "Dispatcharr",
            dependencies: ["Locking", "CurlHTTP", .product(name: "Logging", package: "swift-log")]
        ),
        // The control port: the orchestrator-compatible REST API.
        .target(
            name: "ControlAPI",
            dependencies: [
                "Locking",
                "CSupport",
                "EngineFleet", "Streams", "Store", "RelayCore", "Channels", "CurlHTTP", "Dispatcharr", "VPN",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The panel's page, built into the binary: nothing to install beside it, nothing fetched.
            resources: [.embedInCode("Panel/index.html"), .embedInCode("Panel/panel.css"), .embedInCode("Panel/panel.js")]
        ),
        // A stand-in AceStream engine speaking the engine's HTTP API, with fault controls.
        .target(
            name: "EngineSimulator",
            dependencies: ["Locking", .product(name: "Logging", package: "swift-log")]
        ),
        // Composition root: configuration, logging, and the commands.
        .target(
            name: "AceRelayApp",
            dependencies: [
                "Locking",
                "CSupport",
                "RelayCore",
                "EngineSimulator",
                "EngineFleet",
                "Streams",
                "Channels",
                "ControlAPI",
                "Store",
                "DockerEngine",
                "Dispatcharr",
                "CurlHTTP",
                "StreamFacts",
                "SystemdNotify",
                "VPN",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Stream facts (codecs, picture size, frame rate, audio layout) read from TS packets, no ffmpeg.
        .target(name: "StreamFacts"),
        // Channels: M3U playlists in and out, source scoring and ordering, the channel
        // service over the store, and the prober that measures sources through the relay.
        .target(
            name: "Channels",
            dependencies: ["Locking", "StreamFacts", "RelayCore", "Streams", "Store", "Clocks",
                           .product(name: "Logging", package: "swift-log")]
        ),
        // systemd's notify protocol (READY, STATUS, WATCHDOG, STOPPING) without libsystemd,
        // the relay-loop watchdog gate, and journald-style log lines.
        .target(name: "SystemdNotify", dependencies: ["Locking", .product(name: "Logging", package: "swift-log")]),
        // PROXY protocol v1/v2 header parsing for connections arriving through HAProxy.
        .target(name: "ProxyProtocol"),
        .executableTarget(name: "acerelay", dependencies: ["AceRelayApp"]),
        .executableTarget(
            name: "EngineSimulatorTool",
            dependencies: [
                "EngineSimulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // What the test targets share: a raw-socket HTTP client and players (tests see the exact
        // bytes a server sends), a canned loopback HTTP server, a process runner, temporary
        // directories removed at the end, free ports. A plain `.target` (a test target cannot
        // be depended on) kept under Tests/ with an explicit path, so it sits with the tests
        // rather than the shipped modules. No product names it, so no shipped binary links it
        // (`swift build` still compiles it); it depends on no project module, so any test target can.
        .target(name: "TestSupport", dependencies: ["Locking"], path: "Tests/TestSupport"),
        // Fuzz targets (perf/fuzz.sh builds them with -sanitize=fuzzer,address): one executable per
        // parser of outside input. In an ordinary build they replay the files they are given.
        .target(name: "FuzzSupport", path: "perf/fuzz/Sources/FuzzSupport"),
        .executableTarget(name: "FuzzRequestHead", dependencies: ["FuzzSupport", "RelayCore"],
                          path: "perf/fuzz/Sources/FuzzRequestHead"),
        .executableTarget(name: "FuzzTSStream", dependencies: ["FuzzSupport", "RelayCore"], path: "perf/fuzz/Sources/FuzzTSStream"),
        .executableTarget(name: "FuzzStreamFacts", dependencies: ["FuzzSupport", "StreamFacts"],
                          path: "perf/fuzz/Sources/FuzzStreamFacts"),
        .executableTarget(name: "FuzzProxyProtocol", dependencies: ["FuzzSupport", "ProxyProtocol"],
                          path: "perf/fuzz/Sources/FuzzProxyProtocol"),
        .executableTarget(name: "FuzzEngineAnswers", dependencies: ["FuzzSupport", "RelayCore", "Streams", "EngineFleet", "CurlHTTP"],
                          path: "perf/fuzz/Sources/FuzzEngineAnswers"),
        .executableTarget(name: "FuzzDockerAPI", dependencies: ["FuzzSupport", "DockerEngine"], path: "perf/fuzz/Sources/FuzzDockerAPI"),
        .executableTarget(name: "FuzzControlBodies", dependencies: ["FuzzSupport", "ControlAPI"],
                          path: "perf/fuzz/Sources/FuzzControlBodies"),
        .executableTarget(name: "FuzzM3U", dependencies: ["FuzzSupport", "Channels"], path: "perf/fuzz/Sources/FuzzM3U"),
        .executableTarget(name: "FuzzDispatcharrJSON", dependencies: ["FuzzSupport", "Dispatcharr"],
                          path: "perf/fuzz/Sources/FuzzDispatcharrJSON"),
        .testTarget(name: "RelayCoreTests", dependencies: ["Locking", "RelayCore", "TestSupport"]),
        .testTarget(
            name: "EngineSimulatorTests",
            dependencies: ["EngineSimulator", "TestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        // Docker client tests and the fleet's end-to-end tests, all against a real podman service;
        // the VPN's, against a Gluetun control-server stand-in (GluetunStandIn) and podman.
        .testTarget(
            name: "DockerEngineTests",
            dependencies: ["Locking", "DockerEngine", "EngineFleet", "Store", "RelayCore", "EngineSimulator", "TestSupport", "VPN", "Clocks", "CurlHTTP",
                           "ControlAPI", .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HTTPTypes", package: "swift-http-types"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "StoreTests", dependencies: ["Store", "TestSupport"]),
        // The VPN monitor's parsing and state machine, and the monitor against a Gluetun control-server stand-in.
        .testTarget(
            name: "VPNTests",
            dependencies: ["VPN", "CurlHTTP", "Clocks", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "StreamFactsTests", dependencies: ["StreamFacts", "TestSupport"]),
        .testTarget(name: "ChannelsTests", dependencies: ["Locking", "Channels", "StreamFacts", "Store", "RelayCore",
                                                        .product(name: "Logging", package: "swift-log")]),
        // Probing sources through a real relay against the engine simulator.
        .testTarget(
            name: "SourceProbingTests",
            dependencies: ["Locking", "Channels", "RelayCore", "Streams", "Store", "StreamFacts", "Clocks", "EngineSimulator", "TestSupport",
                           .product(name: "Logging", package: "swift-log")]
        ),
        // The control API's router driven in-process: auth, error shapes, routes under /api/v1, validation.
        .testTarget(
            name: "ControlAPIRouterTests",
            dependencies: ["ControlAPI", "EngineFleet", "Streams", "Store", "RelayCore", "Channels", "StreamFacts", "VPN", "TestSupport",
                           .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "EngineFleetTests",
            dependencies: ["Locking", "EngineFleet", "Clocks", "RelayCore", "Store", "DockerEngine",
                           .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "StreamsTests",
            dependencies: ["Locking", "Streams", "Clocks", "RelayCore", "Store", .product(name: "Logging", package: "swift-log")]
        ),
        // The HTTP layer against loopback servers the tests start.
        .testTarget(name: "CurlHTTPTests", dependencies: ["CurlHTTP", "CSupport", "TestSupport"]),
        // Against the real Dispatcharr backend (shared/tools/real-dispatcharr) and a stand-in for faults.
        .testTarget(
            name: "DispatcharrTests",
            dependencies: ["Locking", "Dispatcharr", "CurlHTTP", "EngineSimulator", "TestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "SystemdNotifyTests",
            dependencies: ["Locking", "SystemdNotify", "TestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "ProxyProtocolTests", dependencies: ["ProxyProtocol"]),
        .testTarget(
            name: "PersistentConditionsTests",
            dependencies: ["Locking", "PersistentConditions", "Clocks", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["Locking", "RelayCore", "AceRelayApp", "EngineSimulator", "ProxyProtocol", "TestSupport"]
        ),
        // The panel in headless Chromium (a Python Playwright script) and its SSE stream, against a real `acerelay serve`.
        .testTarget(
            name: "PanelTests",
            dependencies: ["EngineSimulator", "TestSupport", .product(name: "Logging", package: "swift-log")],
            exclude: ["panel_test.py"]
        ),
    ]
)
