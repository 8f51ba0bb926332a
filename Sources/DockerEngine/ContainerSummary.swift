import Foundation

/// One container as `GET /containers/json` lists it: less than `ContainerDetails`,
/// but one call for all of them.
public struct ContainerSummary: Sendable, Hashable {
    /// The full 64-hex id.
    public var id: String
    /// Every name, without Docker's leading `/`.
    public var names: [String]
    /// The image reference it was created from.
    public var image: String
    /// The daemon's state word.
    public var state: ContainerState
    /// The daemon's human wording, e.g. "Up 5 minutes" or "Exited (0) 2 seconds ago".
    public var status: String
    /// Its labels, which acerelay rebuilds its engine list from.
    public var labels: [String: String]
    /// Ports bound on the host, sorted; empty with host networking.
    public var publishedPorts: [PortBinding]
    /// When it was created (whole seconds: the list reports Unix time).
    public var created: Date

    /// The first name, which is the one given at create.
    public var name: String { names.first ?? "" }

    /// True while the command runs.
    public var isRunning: Bool { state == .running }

    package static func list(decoding body: [UInt8]) throws(DockerError) -> [ContainerSummary] {
        let wires: [Wire]
        do {
            wires = try JSONDecoder().decode([Wire].self, from: Data(body))
        } catch {
            throw .decoding(what: "container list", error: error)
        }
        return wires.map { wire in
            let ports = (wire.Ports ?? []).compactMap { port -> PortBinding? in
                guard let publicPort = port.PublicPort,
                      let transport = ContainerPort.Transport(rawValue: (port.`Type` ?? "tcp").lowercased())
                else { return nil }
                let ip = port.IP.flatMap { $0.isEmpty ? nil : $0 }
                return PortBinding(containerPort: ContainerPort(port.PrivatePort, transport), hostPort: publicPort, hostIP: ip)
            }
            return ContainerSummary(
                id: wire.Id,
                names: (wire.Names ?? []).map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 },
                image: wire.Image ?? "",
                state: ContainerState(rawValue: wire.State ?? ""),
                status: wire.Status ?? "",
                labels: wire.Labels ?? [:],
                publishedPorts: ports.sorted { ($0.containerPort, $0.hostIP ?? "") < ($1.containerPort, $1.hostIP ?? "") },
                created: Date(timeIntervalSince1970: Double(wire.Created ?? 0)))
        }
    }

    // Field names are the Engine API's.
    private struct Wire: Decodable {
        struct Port: Decodable {
            var IP: String?
            var PrivatePort: Int
            var PublicPort: Int?
            var `Type`: String?
        }
        var Id: String
        var Names: [String]?
        var Image: String?
        var State: String?
        var Status: String?
        var Labels: [String: String]?
        var Ports: [Port]?
        var Created: Int64?
    }
}
