/// A configuration value that cannot be used; says which option, which
/// environment variable, and what would be accepted, in one line.
public struct SettingError: Error, CustomStringConvertible, Equatable, Sendable {
    public let option: String
    public let environment: String?
    public let value: String
    public let expected: String

    public var description: String {
        let source = environment.map { "\(option) (or \($0))" } ?? option
        return "invalid value '\(value)' for \(source): expected \(expected)"
    }
}

/// Reads one setting: the command-line value if given, else the environment
/// variable, else the default; parse failures become a `SettingError`.
struct SettingReader {
    let environment: [String: String]

    func raw(_ flag: String?, env: String?) -> String? {
        if let flag { return flag }
        guard let env, let value = environment[env], !value.isEmpty else { return nil }
        return value
    }

    /// A true/false setting from the environment (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
    func bool(env: String, default value: Bool) throws(SettingError) -> Bool {
        guard let text = raw(nil, env: env)?.lowercased() else { return value }
        switch text {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw SettingError(option: env, environment: nil, value: text, expected: "true or false")
        }
    }

    func double(_ flag: String?, option: String, env: String?, default value: Double, range: ClosedRange<Double>) throws(SettingError) -> Double {
        guard let text = raw(flag, env: env) else { return value }
        guard let parsed = Double(text.trimmingCharacters(in: .whitespaces)), range.contains(parsed) else {
            throw SettingError(option: option, environment: env, value: text, expected: "a number of seconds from \(range.lowerBound.formatted) to \(range.upperBound.formatted)")
        }
        return parsed
    }

    func int(_ flag: String?, option: String, env: String?, default value: Int, range: ClosedRange<Int>) throws(SettingError) -> Int {
        guard let text = raw(flag, env: env) else { return value }
        guard let parsed = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(parsed) else {
            throw SettingError(option: option, environment: env, value: text, expected: "a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return parsed
    }

    /// A size in bytes, with an optional binary suffix (`512M`, `2G`, `64KiB`); 0 for
    /// none, else at least `minimum`.
    func bytes(_ flag: String?, option: String, env: String?, default value: UInt64, minimum: UInt64) throws(SettingError) -> UInt64 {
        guard let text = raw(flag, env: env) else { return value }
        let invalid = SettingError(option: option, environment: env, value: text,
                                   expected: "0 or a size of at least \(minimum >> 20) MiB in bytes, optionally with K, M or G (e.g. 2G)")
        var digits = text.trimmingCharacters(in: .whitespaces).uppercased()
        for suffix in ["IB", "B"] where digits.hasSuffix(suffix) { digits.removeLast(suffix.count); break }
        var shift: UInt64 = 0
        if let unit = digits.last, let power = ["K": 10, "M": 20, "G": 30, "T": 40][String(unit)] {
            shift = UInt64(power)
            digits.removeLast()
        }
        guard let number = UInt64(digits), number <= (UInt64.max >> shift) else { throw invalid }
        let bytes = number << shift
        guard bytes == 0 || bytes >= minimum else { throw invalid }
        return bytes
    }

    /// `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all addresses).
    func address(_ flag: String?, option: String, env: String?, default value: String) throws(SettingError) -> (host: String, port: UInt16) {
        let text = raw(flag, env: env) ?? value
        let invalid = SettingError(option: option, environment: env, value: text, expected: "HOST:PORT with a numeric address, e.g. 0.0.0.0:8080 or [::]:8080")
        guard let colon = text.lastIndex(of: ":") else { throw invalid }
        var host = String(text[..<colon])
        guard let port = UInt16(text[text.index(after: colon)...]) else { throw invalid }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "0.0.0.0" }
        guard host.allSatisfy({ $0.isHexDigit || $0 == "." || $0 == ":" }) else { throw invalid }
        return (host, port)
    }

    /// An origin players can reach, `http(s)://host[:port]`, without a path; nil when unset.
    func publicURL(env: String) throws(SettingError) -> String? {
        guard var text = raw(nil, env: env)?.trimmingCharacters(in: .whitespaces) else { return nil }
        while text.hasSuffix("/") { text.removeLast() }
        let parts = URLComponents(string: text)
        guard let scheme = parts?.scheme?.lowercased(), scheme == "http" || scheme == "https", parts?.host?.isEmpty == false,
              parts?.path.isEmpty == true, parts?.query == nil else {
            throw SettingError(option: env, environment: nil, value: text, expected: "an origin players reach, like http://tv.example:8080")
        }
        return text
    }

    /// Engine URLs: repeated flags, or a comma-separated environment variable.
    func engineURLs(_ flags: [String], option: String, env: String) throws(SettingError) -> [String] {
        let values = !flags.isEmpty ? flags : (environment[env] ?? "").split(separator: ",").map { String($0) }
        var urls: [String] = []
        for value in values {
            var url = value.trimmingCharacters(in: .whitespaces)
            if url.isEmpty { continue }
            if !url.contains("://") { url = "http://" + url }
            while url.hasSuffix("/") { url.removeLast() }
            let rest = url.split(separator: "://", maxSplits: 1).last.map(String.init) ?? ""
            guard url.hasPrefix("http://") || url.hasPrefix("https://"), !rest.isEmpty, !rest.contains("/"),
                  !rest.contains(" ") else {
                throw SettingError(option: option, environment: env, value: value, expected: "an engine address like http://127.0.0.1:6878")
            }
            urls.append(url)
        }
        return urls
    }
}

import Foundation

private extension Double {
    var formatted: String { self == rounded() ? String(Int(self)) : String(self) }
}
