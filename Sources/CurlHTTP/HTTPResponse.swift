/// A complete answer: any status (unless the request failed on HTTP errors), its
/// header fields and its whole body.
public struct HTTPResponse: Sendable {
    /// The HTTP status of the last response (after any redirects followed).
    public var status: Int
    /// Header fields of the last response, in arrival order.
    public var headers: [(name: String, value: String)]
    /// The whole body (bounded by the request's `maxBodyBytes`).
    public var body: [UInt8]

    /// A response as received; public so callers' tests can build one.
    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of header `name` (case-insensitive), or nil.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }
}
