import Foundation

/// The AceStream content an entry URL points at: a 40-hex id and which kind of
/// key it is, read from `acestream://<id>` or an engine/proxy URL
/// (`/ace/getstream?id=`, `content_id=`, `infohash=`, `/ace/manifest.m3u8?id=`).
public struct AceStreamReference: Hashable, Sendable, CustomStringConvertible {
    /// The query parameter the id came in; `acestream://` links count as `id`.
    ///
    /// A content id and an infohash are different name spaces; `id` and
    /// `content_id` both name a content id.
    public enum Parameter: String, Hashable, Sendable, CaseIterable {
        case id
        case contentID = "content_id"
        case infohash
    }

    /// Where the reference was written.
    public enum Form: Hashable, Sendable {
        /// `acestream://<id>`.
        case scheme
        /// `http(s)://host:port/ace/getstream?...`: MPEG-TS.
        case getstream
        /// `http(s)://host:port/ace/manifest.m3u8?...`: HLS.
        case manifest
    }

    /// Lower-case, 40 hex digits.
    public let id: String
    /// The query parameter it was read from.
    public let parameter: Parameter
    /// The URL shape it was read from.
    public let form: Form

    /// True for an infohash, false for a content id.
    public var isInfohash: Bool { parameter == .infohash }

    /// The path and query a player asks acerelay or an engine for: `/ace/getstream?id=<id>`
    /// (or `?infohash=<id>` for an infohash).
    public var getstreamPath: String { "/ace/getstream?\(isInfohash ? "infohash" : "id")=\(id)" }

    /// `content_id:<id>` or `infohash:<id>`: what identifies the content, whatever
    /// the form and parameter it was written with (the relay's `ContentKey` spelling).
    public var contentKey: String { "\(isInfohash ? "infohash" : "content_id"):\(id)" }

    public var description: String { contentKey }

    /// Why a URL gives no reference.
    public enum Rejection: Error, Equatable, Sendable, CustomStringConvertible {
        /// Neither `acestream://` nor an `/ace/getstream` or `/ace/manifest.m3u8` URL.
        case notAceStream
        /// An AceStream URL without `id`, `content_id` or `infohash`.
        case missingID
        /// The id is not exactly 40 hex digits; carries what was found.
        case invalidID(String)

        /// One line for a person: what was wrong.
        public var description: String {
            switch self {
            case .notAceStream: "not an AceStream URL"
            case .missingID: "AceStream URL without an id, content_id or infohash parameter"
            case let .invalidID(found): "id is not 40 hex characters: \"\(found.prefix(60))\""
            }
        }
    }

    /// Builds a reference from a known 40-hex id; nil when `id` is not 40 hex digits.
    public init?(id: String, parameter: Parameter = .id, form: Form = .scheme) {
        guard Self.isContentID(id) else { return nil }
        self.id = id.lowercased()
        self.parameter = parameter
        self.form = form
    }

    /// Reads `url`; nil when it is not an AceStream reference (see `parse` for why).
    public init?(url: String) {
        guard case let .success(reference) = Self.parse(url) else { return nil }
        self = reference
    }

    /// Reads `url`, or says why it is not an AceStream reference.
    public static func parse(_ url: String) -> Result<AceStreamReference, Rejection> {
        let text = url.trimmingCharacters(in: .whitespaces)
        let scheme = "acestream://"
        if text.lowercased().hasPrefix(scheme) {
            // acestream://<id>, sometimes with a trailing slash or a query players ignore.
            let rest = text.dropFirst(scheme.count)
            let candidate = String(rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" })
            guard let reference = AceStreamReference(id: candidate, parameter: .id, form: .scheme) else {
                return .failure(.invalidID(candidate))
            }
            return .success(reference)
        }
        guard let components = URLComponents(string: text),
              let httpScheme = components.scheme?.lowercased(), httpScheme == "http" || httpScheme == "https",
              components.host?.isEmpty == false else { return .failure(.notAceStream) }
        let form: Form
        switch components.path.lowercased() {
        case "/ace/getstream", "/ace/getstream/": form = .getstream
        case "/ace/manifest.m3u8": form = .manifest
        default: return .failure(.notAceStream)
        }
        let items = components.queryItems ?? []
        for parameter in Parameter.allCases {
            guard let value = items.first(where: { $0.name.lowercased() == parameter.rawValue })?.value else { continue }
            guard let reference = AceStreamReference(id: value, parameter: parameter, form: form) else {
                return .failure(.invalidID(value))
            }
            return .success(reference)
        }
        return .failure(.missingID)
    }

    static func isContentID(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x46).contains($0) || (0x61...0x66).contains($0) }
    }
}
