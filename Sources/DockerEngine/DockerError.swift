/// Why a Docker Engine API call failed.
///
/// Each case is something a caller reacts to differently: an unreachable daemon
/// is retried later (or reported at start-up), `notFound` means the container or
/// image is gone, `conflict` that a name is taken or the container is in the wrong
/// state. `description` is one line a user can act on.
public enum DockerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `DOCKER_HOST` holds something this client does not speak.
    case invalidHost(value: String, reason: String)
    /// No answer from the daemon: the socket is missing, the connection was
    /// refused or reset, or the daemon did not answer within the time limit.
    case daemonUnreachable(host: DockerHost, reason: String)
    /// 404: no such container or image; the daemon's message names which.
    case notFound(message: String)
    /// 409 (and podman's equivalents): the name is in use, or the container is in
    /// a state that forbids the call (removing a running container without force).
    case conflict(message: String)
    /// Any other failure status, with the daemon's `message`.
    case apiError(status: Int, message: String)
    /// The daemon answered, but not with what the Engine API documents.
    case decoding(what: String, detail: String)
    /// A local file the call needs (an image tarball) could not be read.
    case unreadableFile(path: String, reason: String)
    /// The calling task was cancelled before the daemon answered.
    case cancelled

    public var description: String {
        // Daemon messages sometimes carry a runtime's multi-line output; keep one line.
        text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    private var text: String {
        switch self {
        case .invalidHost(let value, let reason):
            "DOCKER_HOST \"\(value)\" is not usable (\(reason)): set it to \(DockerHost.acceptedForms)"
        case .daemonUnreachable(let host, let reason):
            "cannot reach the Docker daemon at \(host) (\(reason)): start the daemon or set DOCKER_HOST to where it listens"
        case .notFound(let message):
            "Docker: not found: \(message)"
        case .conflict(let message):
            "Docker: conflict: \(message)"
        case .apiError(let status, let message):
            "Docker API error \(status): \(message)"
        case .decoding(let what, let detail):
            "unexpected answer from the Docker daemon for \(what): \(detail)"
        case .unreadableFile(let path, let reason):
            "cannot read \(path): \(reason)"
        case .cancelled:
            "Docker request cancelled"
        }
    }
}

extension DockerError {
    /// A decoding failure in one line: what was wrong and where in the document.
    static func decoding(what: String, error: any Error) -> DockerError {
        guard let error = error as? DecodingError else { return .decoding(what: what, detail: "\(error)") }
        func path(_ keys: [any CodingKey]) -> String {
            keys.isEmpty ? "the top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        let detail: String
        switch error {
        case .keyNotFound(let key, let context):
            detail = "\(key.stringValue) is missing at \(path(context.codingPath))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            detail = "\(context.debugDescription) at \(path(context.codingPath))"
        @unknown default:
            detail = "\(error)"
        }
        return .decoding(what: what, detail: detail)
    }
}
