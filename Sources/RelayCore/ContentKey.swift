/// What a player asks for: a 40-hex AceStream content id or infohash.
///
/// The two are different name spaces (an infohash is not a content id), so the
/// kind is part of the key: the same hex under `id=` and `infohash=` makes two hubs.
public struct ContentKey: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case contentID = "content_id"
        case infohash
    }

    public let kind: Kind
    /// Lower-case, 40 hex digits.
    public let value: String

    /// Accepts exactly 40 hex digits in any case; nil otherwise.
    public init?(kind: Kind, value: String) {
        guard value.utf8.count == 40, value.utf8.allSatisfy({ $0.isHexDigit }) else { return nil }
        self.kind = kind
        self.value = value.lowercased()
    }

    /// The query parameter an engine's `getstream` expects for this key.
    public var engineParameter: String { kind == .contentID ? "id" : "infohash" }

    public var description: String { "\(kind.rawValue):\(value)" }
}

extension UInt8 {
    var isHexDigit: Bool {
        (0x30...0x39).contains(self) || (0x41...0x46).contains(self) || (0x61...0x66).contains(self)
    }
}
