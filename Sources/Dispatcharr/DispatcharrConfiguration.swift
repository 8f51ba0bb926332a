import Foundation

/// Where Dispatcharr is, how acerelay proves who it is, and which of its channels acerelay manages.
///
/// Read from the environment with StreamFlow's variable names, so a deployment that
/// already points StreamFlow at Dispatcharr needs no new settings. `description`
/// never shows a password, token or API key.
public struct DispatcharrConfiguration: Sendable, Equatable, CustomStringConvertible {
    /// How requests are authenticated.
    public enum Authentication: Sendable, Equatable {
        /// `X-API-Key: <key>` on every request; no token, never a login.
        case apiKey(String)
        /// JWTs: start from `token` when one was given, log in with `user`/`password`
        /// when there is none or it is refused (and the refresh token is refused too).
        /// `user` and `password` are nil when only a ready token was given, which then
        /// cannot be renewed.
        case jwt(token: String?, user: String?, password: String?)
    }

    /// The server's root URL without a trailing slash, e.g. `http://dispatcharr:9191`.
    public var baseURL: String
    /// How requests are authenticated.
    public var authentication: Authentication
    /// Names of the channel groups whose channels are managed; empty manages every group.
    public var channelGroups: [String]
    /// Time between two reads of Dispatcharr's channels.
    public var syncInterval: Duration
    /// False measures and reports what would be written without writing anything.
    public var reorder: Bool

    /// A configuration as given; `baseURL` loses any trailing slash.
    public init(
        baseURL: String,
        authentication: Authentication,
        channelGroups: [String] = [],
        syncInterval: Duration = .seconds(300),
        reorder: Bool = true
    ) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.authentication = authentication
        self.channelGroups = channelGroups
        self.syncInterval = syncInterval
        self.reorder = reorder
    }

    /// The configuration the environment describes: nil when `DISPATCHARR_BASE_URL` is unset
    /// or empty (Dispatcharr is not used), an error naming every bad value otherwise.
    ///
    /// Variables: `DISPATCHARR_BASE_URL`, `DISPATCHARR_USER`, `DISPATCHARR_PASS`,
    /// `DISPATCHARR_TOKEN`, `DISPATCHARR_API_KEY` (wins over the others),
    /// `DISPATCHARR_CHANNEL_GROUPS` (comma list), `DISPATCHARR_SYNC_INTERVAL_S` (default 300),
    /// `DISPATCHARR_REORDER` (default true).
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> Result<DispatcharrConfiguration?, DispatcharrConfigurationError> {
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
            return raw
        }
        guard let base = value("DISPATCHARR_BASE_URL") else { return .success(nil) }
        var problems: [String] = []

        if let reason = baseURLProblem(base) {
            problems.append("DISPATCHARR_BASE_URL=\(base) \(reason); use e.g. http://dispatcharr:9191")
        }

        var authentication = Authentication.jwt(token: nil, user: nil, password: nil)
        let user = value("DISPATCHARR_USER")
        let password = value("DISPATCHARR_PASS")
        if let key = value("DISPATCHARR_API_KEY") {
            authentication = .apiKey(key)
        } else {
            switch (user, password) {
            case (.some, nil):
                problems.append("DISPATCHARR_USER is set but DISPATCHARR_PASS is not; set both, or DISPATCHARR_API_KEY")
            case (nil, .some):
                problems.append("DISPATCHARR_PASS is set but DISPATCHARR_USER is not; set both, or DISPATCHARR_API_KEY")
            default:
                break
            }
            let token = value("DISPATCHARR_TOKEN")
            if token == nil && user == nil && password == nil {
                problems.append("DISPATCHARR_BASE_URL is set but no credentials are; set DISPATCHARR_API_KEY, DISPATCHARR_TOKEN, or DISPATCHARR_USER and DISPATCHARR_PASS")
            }
            authentication = .jwt(token: token, user: password == nil ? nil : user, password: user == nil ? nil : password)
        }

        var groups: [String] = []
        if let raw = environment["DISPATCHARR_CHANNEL_GROUPS"], !raw.trimmingCharacters(in: .whitespaces).isEmpty {
            groups = raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if groups.isEmpty {
                problems.append("DISPATCHARR_CHANNEL_GROUPS=\(raw) names no group; give comma-separated group names or unset it")
            }
        }

        var interval = Duration.seconds(300)
        if let raw = value("DISPATCHARR_SYNC_INTERVAL_S") {
            if let seconds = Int(raw), seconds >= 1, seconds <= 86_400 {
                interval = .seconds(seconds)
            } else {
                problems.append("DISPATCHARR_SYNC_INTERVAL_S=\(raw) is not a whole number of seconds from 1 to 86400")
            }
        }

        var reorder = true
        if let raw = value("DISPATCHARR_REORDER") {
            switch raw.lowercased() {
            case "1", "true", "yes", "on": reorder = true
            case "0", "false", "no", "off": reorder = false
            default: problems.append("DISPATCHARR_REORDER=\(raw) is not true or false")
            }
        }

        guard problems.isEmpty else { return .failure(DispatcharrConfigurationError(problems: problems)) }
        return .success(DispatcharrConfiguration(baseURL: base, authentication: authentication,
                                                 channelGroups: groups, syncInterval: interval, reorder: reorder))
    }

    /// Why `base` cannot be a base URL, or nil when it can.
    private static func baseURLProblem(_ base: String) -> String? {
        guard let components = URLComponents(string: base), let scheme = components.scheme?.lowercased() else {
            return "is not a URL"
        }
        guard scheme == "http" || scheme == "https" else { return "is not an http or https URL" }
        guard let host = components.host, !host.isEmpty else { return "has no host" }
        if components.query != nil || components.fragment != nil { return "must not have a query or fragment" }
        if components.user != nil || components.password != nil { return "must not carry credentials; use DISPATCHARR_USER/DISPATCHARR_PASS" }
        return nil
    }

    /// The settings in one line, credentials replaced by what kind they are.
    public var description: String {
        let auth: String
        switch authentication {
        case .apiKey: auth = "api key"
        case .jwt(let token, let user, _):
            auth = [user.map { "user \($0)" }, token == nil ? nil : "a ready token"].compactMap { $0 }.joined(separator: " and ")
        }
        let groups = channelGroups.isEmpty ? "all groups" : "groups \(channelGroups.joined(separator: ","))"
        return "dispatcharr \(baseURL) (\(auth)), \(groups), sync every \(syncInterval.components.seconds) s, reorder \(reorder ? "on" : "off")"
    }
}

/// Every bad Dispatcharr setting found in the environment, one line each.
public struct DispatcharrConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// One line per bad value: which variable, what is wrong, what to do.
    public var problems: [String]

    /// The problems, one per line.
    public var description: String { problems.joined(separator: "\n") }
}
