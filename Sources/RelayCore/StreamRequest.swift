import Foundation

/// Reads the content a player asks for from `/ace/getstream`'s query.
///
/// `id` and `content_id` name a content id, `infohash` an infohash; exactly one
/// must be present and be 40 hex digits. A client's `pid` and the engine's other
/// parameters (`format`, `file_indexes`, `seekback`, ...) are accepted and
/// ignored: the relay is the engine's only player and chooses its own pid.
public enum StreamRequest {
    public struct Problem: Error, Equatable, Sendable {
        public let message: String
    }

    public static func parse(_ head: HTTPRequestHead) -> Result<ContentKey, Problem> {
        let items = head.queryItems
        func value(_ name: String) -> String? { items.first { $0.name == name }?.value }
        let candidates: [(ContentKey.Kind, String, String)] = [
            ("id", ContentKey.Kind.contentID), ("content_id", .contentID), ("infohash", .infohash),
        ].compactMap { name, kind in value(name).map { (kind, name, $0) } }
        guard let (kind, name, raw) = candidates.first else {
            return .failure(Problem(message: "missing content: add ?id=<40 hex content id> (or content_id= / infohash=)"))
        }
        if candidates.count > 1, Set(candidates.map { $0.2.lowercased() }).count > 1 {
            return .failure(Problem(message: "conflicting content parameters: give one of id, content_id, infohash"))
        }
        guard let key = ContentKey(kind: kind, value: raw.trimmingCharacters(in: .whitespaces)) else {
            return .failure(Problem(message: "invalid \(name) '\(raw.prefix(64))': expected 40 hexadecimal characters"))
        }
        return .success(key)
    }
}
