/// What `GET /version` says about the daemon.
public struct DockerVersion: Sendable, Hashable, Decodable {
    /// The newest API version the daemon speaks, e.g. "1.41"; this client uses 1.41 paths.
    public var apiVersion: String
    /// The daemon's release, e.g. "24.0.7" (Docker) or "4.3.1" (podman).
    public var version: String
    /// "linux" for every daemon that can run the engine image.
    public var os: String
    /// Go's architecture name: "amd64", "arm64"; picks the engine image variant.
    public var arch: String

    /// A version record, for tests and fakes.
    public init(apiVersion: String, version: String, os: String, arch: String) {
        self.apiVersion = apiVersion
        self.version = version
        self.os = os
        self.arch = arch
    }

    private enum CodingKeys: String, CodingKey {
        case apiVersion = "ApiVersion"
        case version = "Version"
        case os = "Os"
        case arch = "Arch"
    }
}
