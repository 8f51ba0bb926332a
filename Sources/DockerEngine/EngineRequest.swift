import Foundation

/// One HTTP request to the Engine API, as the client builds it before curl sends it.
struct EngineRequest: Sendable {
    enum Method: String, Sendable {
        case get = "GET"
        case post = "POST"
        case delete = "DELETE"
    }

    /// What is sent after the head.
    enum Body: Sendable {
        case empty
        /// A JSON document, already encoded.
        case json([UInt8])
        /// A file streamed from disk (image tarballs can be hundreds of megabytes).
        case file(path: String, contentType: String)
    }

    var method: Method
    /// Path below the host, already percent-encoded, starting with `/`.
    var path: String
    var query: [(name: String, value: String)] = []
    var body: Body = .empty
    /// Total time allowed for the exchange, on top of which nothing waits.
    var timeout: Duration

    /// "POST /containers/create", for logs.
    var summary: String { "\(method.rawValue) \(path)" }

    /// The path and query, percent-encoded.
    var target: String {
        guard !query.isEmpty else { return path }
        let pairs = query.map { "\(Self.encodeQueryComponent($0.name))=\(Self.encodeQueryComponent($0.value))" }
        return path + "?" + pairs.joined(separator: "&")
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters, so JSON
    /// filters (`{"label":["k=v"]}`) survive as one query value.
    static func encodeQueryComponent(_ text: String) -> String {
        encode(text, keeping: unreserved)
    }

    /// Percent-encodes a container id, name or image reference for use as one
    /// path element. `/` and `:` stay literal because image references contain
    /// them and the daemon's router matches `/images/{name:.*}/json`.
    static func encodePathElement(_ text: String, keepingSlash: Bool = false) -> String {
        encode(text, keeping: keepingSlash ? referenceCharacters : unreserved)
    }

    private static let unreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    private static let referenceCharacters = unreserved.union(CharacterSet(charactersIn: "/:@"))

    private static func encode(_ text: String, keeping allowed: CharacterSet) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if allowed.contains(scalar) {
                out.unicodeScalars.append(scalar)
            } else {
                for byte in String(scalar).utf8 { out += String(format: "%%%02X", byte) }
            }
        }
        return out
    }
}

/// A complete answer from the daemon: any status, with its whole body.
package struct EngineResponse: Sendable {
    package var status: Int
    package var body: [UInt8]

    package init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }

    /// The daemon's explanation of a failure: the `message` field Docker and
    /// podman put in error bodies, or the start of the body when it is not JSON.
    package var errorMessage: String {
        if let error = try? JSONDecoder().decode(ErrorBody.self, from: Data(body)), let message = error.message {
            return message
        }
        let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "HTTP \(status) with no message" : text
    }

    /// podman's `cause`: the bare libpod error under the wrapped message, which
    /// tells "name in use" apart from other 500s.
    package var errorCause: String? {
        (try? JSONDecoder().decode(ErrorBody.self, from: Data(body)))?.cause
    }

    private struct ErrorBody: Decodable {
        var message: String?
        var cause: String?
    }
}
