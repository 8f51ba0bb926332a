import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension JSONEncoder {
    /// The API's JSON: ISO 8601 dates, sorted keys, slashes as they are.
    static var api: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// `values` encoded as a JSON array without its brackets, for an array sent in
    /// pieces joined by commas; empty when there are none.
    func arrayElements(_ values: [some Encodable]) throws -> Data {
        guard !values.isEmpty else { return Data() }
        return try encode(values).dropFirst().dropLast()
    }
}

extension Response {
    /// An `Encodable` value as JSON: ISO 8601 dates, sorted keys.
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONEncoder.api.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// A JSON object built from plain values (`NSNull` for null).
    static func rawJSON(_ object: [String: Any], status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension Request {
    /// The body decoded as JSON, or a 400 that says what was wrong with it.
    func decodeJSON<Body: Decodable>(_ type: Body.Type, limit: Int = 1 << 20) async throws -> Body {
        let buffer = try await body.collect(upTo: limit)
        return try Self.decodeBody(Body.self, from: Data(buffer.readableBytesView))
    }

    /// What `decodeJSON` does once the body is in: the nesting bound, then the decoding
    /// errors a client can meet, as 400s. (The fuzz target calls this directly.)
    static func decodeBody<Body: Decodable>(_ type: Body.Type, from data: Data) throws(APIError) -> Body {
        if JSONNesting.exceedsLimit(data) {
            throw APIError.badRequest("invalid JSON body: nested deeper than \(JSONNesting.limit) levels")
        }
        do {
            return try JSONDecoder().decode(Body.self, from: data)
        } catch let error as DecodingError {
            throw APIError.badRequest("invalid JSON body: \(Self.describe(error))")
        } catch {
            throw APIError.badRequest("invalid JSON body")
        }
    }

    /// A path parameter, percent-decoded: stream ids hold a "|", which clients send as %7C.
    static func decoded(_ parameter: String) -> String { parameter.removingPercentEncoding ?? parameter }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context):
            return "missing field \((context.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: "."))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        case .dataCorrupted: return "not valid JSON"
        @unknown default: return "not valid JSON"
        }
    }
}
