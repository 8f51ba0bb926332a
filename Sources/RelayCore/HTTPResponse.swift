import Foundation

/// Response heads and small bodies the stream port sends.
enum HTTPResponse {
    /// The head every player gets before the stream. No length: the body runs
    /// until either side closes, which `Connection: close` announces.
    static let streamHead: [UInt8] = Array((
        "HTTP/1.1 200 OK\r\n"
        + "Content-Type: video/mp2t\r\n"
        + "Connection: close\r\n"
        + "Cache-Control: no-cache, no-store\r\n"
        + "Access-Control-Allow-Origin: *\r\n"
        + "Server: acerelay\r\n\r\n").utf8)

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 422: return "Unprocessable Content"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 503: return "Service Unavailable"
        default: return "Error"
        }
    }

    /// A complete response with a body; `includeBody` false for HEAD.
    static func make(status: Int, contentType: String, body: [UInt8], extraHeaders: [(String, String)] = [], includeBody: Bool = true) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(reason(status))\r\n"
        head += "Content-Type: \(contentType)\r\n"
        head += "Content-Length: \(body.count)\r\n"
        for (name, value) in extraHeaders { head += "\(name): \(value)\r\n" }
        head += "Connection: close\r\nServer: acerelay\r\n\r\n"
        return Array(head.utf8) + (includeBody ? body : [])
    }

    /// A JSON error `{"code": ..., "message": ...}`.
    static func error(status: Int, code: String, message: String, retryAfter: Int? = nil, extraHeaders: [(String, String)] = [], includeBody: Bool = true) -> [UInt8] {
        let object: [String: String] = ["code": code, "message": message]
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { Array($0) } ?? []
        var headers = extraHeaders
        if let retryAfter { headers.append(("Retry-After", String(retryAfter))) }
        return make(status: status, contentType: "application/json", body: body, extraHeaders: headers, includeBody: includeBody)
    }
}
