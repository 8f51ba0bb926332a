/// How deep a JSON document nests, measured on its bytes before any decoder
/// sees it: Foundation's decoders recurse per level, so a body of a million
/// `[` would otherwise cost a deep stack before it is refused.
enum JSONNesting {
    /// The most levels of arrays and objects a request body may nest.
    static let limit = 64

    /// True when `bytes` opens more than `limit` arrays or objects inside one
    /// another. Brackets inside strings (escapes included) do not count; the
    /// document's validity is left to the decoder.
    static func exceedsLimit(_ bytes: some Sequence<UInt8>, limit: Int = JSONNesting.limit) -> Bool {
        var depth = 0
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > limit { return true }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return false
    }
}
