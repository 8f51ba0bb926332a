import Foundation

/// A Server-Sent Events reader over a raw connection: sends the GET, checks
/// the head, undoes chunked transfer coding and splits the stream into events.
final class SSEClient {
    struct Event {
        var name: String
        var data: String
        var receivedAt: Date
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any] }
    }

    private let connection: Connection
    private(set) var status = 0
    private(set) var headers: [String: String] = [:]
    private var raw: [UInt8] = []
    private var chunked = false
    private var text = ""
    /// True once the server ended the stream (not merely a quiet moment).
    private(set) var ended = false

    init(port: UInt16, path: String = "/api/v1/events/live") throws {
        connection = try Connection(port: port)
        try connection.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            guard let bytes = connection.receive(timeout: 1) else { continue }
            if bytes.isEmpty { break }
            raw += bytes
            if let end = Self.find([13, 10, 13, 10], in: raw) {
                let head = String(decoding: raw[..<end], as: UTF8.self).components(separatedBy: "\r\n")
                status = head.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
                for line in head.dropFirst() {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
                chunked = headers["transfer-encoding"]?.lowercased().contains("chunked") == true
                raw = Array(raw[(end + 4)...])
                return
            }
        }
        throw PanelTestError("no response head from GET \(path) on 127.0.0.1:\(port)")
    }

    /// The next event, waiting up to `timeout`; nil on timeout or when the stream ends.
    func next(timeout: Double) -> Event? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            decode()
            if let range = text.range(of: "\n\n") {
                let block = String(text[..<range.lowerBound])
                text.removeSubrange(text.startIndex..<range.upperBound)
                var name = "message"
                var data: [String] = []
                for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                    if line.hasPrefix("event:") { name = line.dropFirst(6).trimmingCharacters(in: .whitespaces) }
                    if line.hasPrefix("data:") { data.append(String(line.dropFirst(5)).trimmingCharacters(in: .whitespaces)) }
                }
                // Comments and `retry:` alone carry no event.
                if data.isEmpty { continue }
                return Event(name: name, data: data.joined(separator: "\n"), receivedAt: Date())
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return nil }
            guard let bytes = connection.receive(timeout: min(left, 1)) else { continue }
            if bytes.isEmpty { ended = true; return nil }
            raw += bytes
        }
    }

    /// The next event named `name` (others skipped), waiting up to `timeout` in all.
    func next(named name: String, timeout: Double, where accept: (Event) -> Bool = { _ in true }) -> Event? {
        let deadline = Date().addingTimeInterval(timeout)
        while deadline.timeIntervalSinceNow > 0 {
            guard let event = next(timeout: deadline.timeIntervalSinceNow) else { return nil }
            if event.name == name, accept(event) { return event }
        }
        return nil
    }

    func close() { connection.shutdown() }

    /// Moves whole chunks (or everything, when not chunked) from `raw` into `text`.
    private func decode() {
        guard chunked else {
            text += String(decoding: raw, as: UTF8.self)
            raw = []
            return
        }
        while let lineEnd = Self.find([13, 10], in: raw) {
            let sizeText = String(decoding: raw[..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { return }
            let start = lineEnd + 2
            guard raw.count >= start + size + 2 else { return }
            text += String(decoding: raw[start..<(start + size)], as: UTF8.self)
            raw = Array(raw[(start + size + 2)...])
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }
}
