import RelayCore
import Store

extension StreamRecord {
    /// The relay's key for this stream's content; nil for key types the relay
    /// does not play (urls, magnets) or a key that is not 40 hex digits.
    public var contentKey: ContentKey? {
        switch keyType {
        case ContentKey.Kind.contentID.rawValue: ContentKey(kind: .contentID, value: key)
        case ContentKey.Kind.infohash.rawValue: ContentKey(kind: .infohash, value: key)
        default: nil
        }
    }
}
