import Foundation

/// One playback session an engine granted: the URLs `getstream?format=json` returned.
public struct EngineSession: Sendable, Equatable {
    public var playbackURL: String
    public var statURL: String
    public var commandURL: String
    public var infohash: String
    public var playbackSessionID: String
    public var isLive: Bool
}

/// A `getstream` answer that does not give a usable session.
public struct EngineAPIError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// The engine's HTTP API as the relay uses it (see shared/reference/acestream-engine.md).
public enum EngineAPI {
    /// The URL that opens (or returns the existing) session for `content` as player `pid`.
    public static func getstreamURL(engine: EngineEndpoint, content: ContentKey, pid: String) -> String {
        "\(engine.baseURL)/ace/getstream?format=json&\(content.engineParameter)=\(content.value)&pid=\(pid)"
    }

    /// The URL that stops a session.
    public static func stopURL(commandURL: String) -> String {
        commandURL + (commandURL.contains("?") ? "&" : "?") + "method=stop"
    }

    /// Parses a `getstream?format=json` body. URLs come back with the engine's own
    /// idea of its host (often 127.0.0.1 or a container address), so their scheme,
    /// host and port are replaced by those we reached the engine at.
    public static func parseSession(_ body: [UInt8], engine: EngineEndpoint) throws(EngineAPIError) -> EngineSession {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw EngineAPIError(message: "engine answered getstream with something that is not JSON")
        }
        if let error = object["error"] as? String, !error.isEmpty {
            throw EngineAPIError(message: "engine refused the content: \(error)")
        }
        guard let response = object["response"] as? [String: Any],
              let playback = response["playback_url"] as? String, !playback.isEmpty else {
            throw EngineAPIError(message: "engine's getstream answer has no playback_url")
        }
        func string(_ key: String) -> String {
            if let s = response[key] as? String { return s }
            if let n = response[key] as? NSNumber { return n.stringValue }
            return ""
        }
        let isLive = (response["is_live"] as? NSNumber)?.intValue ?? Int(string("is_live")) ?? 1
        return EngineSession(
            playbackURL: rewriteHost(playback, to: engine),
            statURL: rewriteHost(string("stat_url"), to: engine),
            commandURL: rewriteHost(string("command_url"), to: engine),
            infohash: string("infohash"),
            playbackSessionID: string("playback_session_id"),
            isLive: isLive != 0)
    }

    /// Keeps the path and query of `url`, takes scheme, host and port from the engine.
    ///
    /// Whatever the engine wrote — an absolute URL, a protocol-relative `//host/...`,
    /// a scheme-less `127.0.0.2:6878/...` or a relative path — the result is always on
    /// the engine's own address, so an engine (or something pretending to be one)
    /// cannot make the relay fetch from, or send `method=stop` to, another host.
    static func rewriteHost(_ url: String, to engine: EngineEndpoint) -> String {
        guard !url.isEmpty else { return url }
        var rest = Substring(url)
        if let schemeEnd = rest.range(of: "://") {
            rest = rest[schemeEnd.upperBound...]
            rest = rest[(rest.firstIndex { "/?#".contains($0) } ?? rest.endIndex)...]
        } else if rest.hasPrefix("//") {
            rest = rest.dropFirst(2)
            rest = rest[(rest.firstIndex { "/?#".contains($0) } ?? rest.endIndex)...]
        } else if !rest.hasPrefix("/") {
            // "host:port/path" or "host.name/path" names an authority; "ace/r/..." is a relative path.
            let segmentEnd = rest.firstIndex { "/?#".contains($0) } ?? rest.endIndex
            let segment = rest[..<segmentEnd]
            if segment.contains(":") || segment.contains(".") || segment.contains("@") || segment.lowercased() == "localhost" {
                rest = rest[segmentEnd...]
            }
        }
        let path = rest.hasPrefix("/") ? String(rest) : "/" + rest
        return engine.baseURL + path
    }
}
