/// Builders for response heads and bodies.
enum HTTPResponse {
    /// A response head with Content-Length for a body of `bodyLength` bytes.
    static func head(
        status: Int, reason: String, contentType: String?, bodyLength: Int?, keepAlive: Bool,
        extraFields: [(String, String)] = []
    ) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(reason)\r\nServer: acestream-engine-sim\r\n"
        if let contentType { text += "Content-Type: \(contentType)\r\n" }
        if let bodyLength { text += "Content-Length: \(bodyLength)\r\n" }
        for (name, value) in extraFields { text += "\(name): \(value)\r\n" }
        text += "Connection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n"
        return Array(text.utf8)
    }

    /// A whole response: head plus body (the body is left out for HEAD requests).
    static func complete(
        status: Int, reason: String, contentType: String, body: String, keepAlive: Bool, headOnly: Bool,
        extraFields: [(String, String)] = []
    ) -> [UInt8] {
        let bodyBytes = Array(body.utf8)
        var bytes = head(
            status: status, reason: reason, contentType: contentType, bodyLength: bodyBytes.count,
            keepAlive: keepAlive, extraFields: extraFields)
        if !headOnly { bytes += bodyBytes }
        return bytes
    }

    /// Appends one chunk of chunked transfer coding: size line, data, CRLF.
    static func appendChunk(_ data: [UInt8], to frame: inout [UInt8]) {
        frame.append(contentsOf: String(data.count, radix: 16).utf8)
        frame.append(contentsOf: [13, 10])
        frame.append(contentsOf: data)
        frame.append(contentsOf: [13, 10])
    }

    /// The last chunk of a chunked body, with no trailers.
    static let lastChunk: [UInt8] = Array("0\r\n\r\n".utf8)
}
