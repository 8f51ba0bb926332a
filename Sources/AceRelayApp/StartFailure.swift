import Foundation

/// Why acerelay cannot do its job, as one line for stderr; `serve` then exits
/// with status 1, so systemd's `Restart=on-failure` restarts it.
enum StartFailure: Error, CustomStringConvertible {
    /// The data directory or its database cannot be used.
    case store(any Error)
    /// `DOCKER_HOST` cannot be used.
    case docker(any Error)
    /// The stream port (`--listen`) cannot be opened.
    case streamPort(address: String, any Error)
    /// The control port (`--api-listen`) cannot be opened.
    case controlPort(address: String, any Error)
    /// The control plane stopped on an error no service was told to ignore.
    case stopped(any Error)

    var description: String {
        switch self {
        case .store(let error):
            return Self.oneLine(error)
        case .docker(let error):
            return "cannot use DOCKER_HOST: \(Self.oneLine(error)); fix it, or run with --provision off"
        case .streamPort(let address, let error):
            return "cannot open the stream port \(address) (--listen): \(Self.oneLine(error))"
        case .controlPort(let address, let error):
            return "cannot open the control port \(address) (--api-listen): \(Self.oneLine(error)); choose a free port"
        case .stopped(let error):
            return "the control plane stopped: \(Self.oneLine(error))"
        }
    }

    /// An error's text with its line breaks folded, so the whole failure stays one line.
    static func oneLine(_ error: any Error) -> String {
        "\(error)".split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }
}
