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
    ],
    targets: [
        // Forwarders for what Swift cannot call: libev macros, libcurl's variadic
        // setopt/getinfo, and _GNU_SOURCE-only syscalls. No logic lives here.
        .target(
            name: "CSupport",
            path: "CSupport",
            linkerSettings: [.linkedLibrary("ev"), .linkedLibrary("curl")]
        ),
        // The data plane: libev loops, hubs, the memfd history and sendfile fan-out.
        .target(
            name: "RelayCore",
            dependencies: [
                "CSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // A stand-in AceStream engine speaking the engine's HTTP API, with fault controls.
        .target(
            name: "EngineSimulator",
            dependencies: [.product(name: "Logging", package: "swift-log")]
        ),
        // Composition root: configuration, logging, and the commands.
        .target(
            name: "AceRelayApp",
            dependencies: [
                "RelayCore",
                "EngineSimulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "acerelay", dependencies: ["AceRelayApp"]),
        .executableTarget(
            name: "EngineSimulatorTool",
            dependencies: [
                "EngineSimulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "RelayCoreTests", dependencies: ["RelayCore"]),
        .testTarget(name: "EngineSimulatorTests", dependencies: ["EngineSimulator"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["RelayCore", "AceRelayApp", "EngineSimulator"]
        ),
    ]
)
