/// An M3U playlist as IPTV tools write it: `#EXTM3U`, then per entry an
/// `#EXTINF` line with attributes and a display name, optional `#EXTGRP`, and
/// the URL line.
///
/// Parsing is tolerant of what real playlists contain (a UTF-8 byte order
/// mark, CRLF or lone CR line ends, blank lines, comment and player-option
/// lines, URL lines without `#EXTINF`) and strict only about the header: a
/// body whose first non-blank line is not `#EXTM3U` is not a playlist.
public struct M3UPlaylist: Equatable, Sendable {
    /// One URL line and what the lines before it said about it.
    public struct Entry: Equatable, Sendable {
        /// 1-based line number of the URL line.
        public var line: Int
        /// 1-based line number of the `#EXTINF` line, when there was one.
        public var extinfLine: Int?
        /// The `#EXTINF` duration as written (`-1` for live); nil without `#EXTINF`.
        public var duration: String?
        /// `key="value"` attributes of the `#EXTINF` line, keys lower-cased.
        public var attributes: [String: String]
        /// The display name after the attributes' comma, trimmed; empty when absent.
        public var name: String
        /// The `#EXTGRP` group named before this entry, if any.
        public var extgrp: String?
        /// The URL line, trimmed.
        public var url: String

        public init(line: Int, extinfLine: Int? = nil, duration: String? = nil, attributes: [String: String] = [:], name: String = "", extgrp: String? = nil, url: String) {
            self.line = line
            self.extinfLine = extinfLine
            self.duration = duration
            self.attributes = attributes
            self.name = name
            self.extgrp = extgrp
            self.url = url
        }

        public var tvgID: String? { attributes["tvg-id"].flatMap { $0.isEmpty ? nil : $0 } }
        public var tvgName: String? { attributes["tvg-name"].flatMap { $0.isEmpty ? nil : $0 } }
        public var tvgLogo: String? { attributes["tvg-logo"].flatMap { $0.isEmpty ? nil : $0 } }
        /// `group-title`, else the `#EXTGRP` group.
        public var groupTitle: String? { attributes["group-title"].flatMap { $0.isEmpty ? nil : $0 } ?? extgrp }
        /// The display name, else `tvg-name`; empty when neither is given.
        public var displayName: String { name.isEmpty ? (tvgName ?? "") : name }
    }

    /// Attributes of the `#EXTM3U` line itself (`x-tvg-url`, `url-tvg`, ...), keys lower-cased.
    public var headerAttributes: [String: String]
    /// Entries in playlist order.
    public var entries: [Entry]

    public init(headerAttributes: [String: String] = [:], entries: [Entry]) {
        self.headerAttributes = headerAttributes
        self.entries = entries
    }

    /// Parses playlist bytes as UTF-8 (invalid sequences replaced), byte order mark allowed.
    public init(bytes: [UInt8]) throws(M3UParseError) {
        try self.init(text: String(decoding: bytes, as: UTF8.self))
    }

    /// Parses playlist text.
    public init(text: String) throws(M3UParseError) {
        var header: [String: String]?
        var entries: [Entry] = []
        var pendingInfo: (line: Int, duration: String, attributes: [String: String], name: String)?
        var pendingGroup: String?
        var lineNumber = 0
        for rawLine in Self.lines(of: text) {
            lineNumber += 1
            var line = Substring(rawLine)
            if lineNumber == 1, line.first == "\u{FEFF}" { line = line.dropFirst() }
            let trimmed = line.trimmingWhitespace()
            if trimmed.isEmpty { continue }
            guard header != nil else {
                // Some generators write the tag in lower case; players accept it.
                guard trimmed.prefix(7).uppercased() == "#EXTM3U" else {
                    throw .notM3U(line: lineNumber, text: String(trimmed.prefix(80)))
                }
                header = EXTINFLine.attributes(in: trimmed.dropFirst("#EXTM3U".count))
                continue
            }
            if trimmed.hasPrefix("#EXTINF:") {
                let info = EXTINFLine(trimmed.dropFirst("#EXTINF:".count))
                pendingInfo = (lineNumber, info.duration, info.attributes, info.name)
            } else if trimmed.hasPrefix("#EXTGRP:") {
                pendingGroup = String(trimmed.dropFirst("#EXTGRP:".count).trimmingWhitespace())
            } else if trimmed.hasPrefix("#") {
                continue
            } else {
                entries.append(Entry(
                    line: lineNumber, extinfLine: pendingInfo?.line, duration: pendingInfo?.duration,
                    attributes: pendingInfo?.attributes ?? [:], name: pendingInfo?.name ?? "",
                    extgrp: pendingGroup.flatMap { $0.isEmpty ? nil : $0 }, url: String(trimmed)
                ))
                pendingInfo = nil
                pendingGroup = nil
            }
        }
        guard let header else { throw .empty }
        self.headerAttributes = header
        self.entries = entries
    }

    /// Lines split at LF, CRLF or a lone CR, without their terminators.
    private static func lines(of text: String) -> [Substring] {
        // Swift treats "\r\n" as one Character, so splitting on both covers all three.
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
    }
}

/// Why a body is not a playlist.
public enum M3UParseError: Error, Equatable, CustomStringConvertible {
    /// The body has no non-blank line at all.
    case empty
    /// The first non-blank line, at `line`, is not `#EXTM3U`; `text` is its start.
    case notM3U(line: Int, text: String)

    public var description: String {
        switch self {
        case .empty:
            "the playlist is empty: expected #EXTM3U on its first line"
        case let .notM3U(line, text):
            "not an M3U playlist: line \(line) is \"\(text)\", expected #EXTM3U; check that the URL serves the playlist itself"
        }
    }
}

/// The part of an `#EXTINF:` line after the colon: `<duration> key="value" ...,<name>`.
struct EXTINFLine {
    var duration: String
    var attributes: [String: String]
    var name: String

    init(_ body: Substring) {
        // The name starts after the first comma outside quotes; attribute values may hold commas.
        var inQuotes = false
        var comma: Substring.Index?
        for index in body.indices {
            let character = body[index]
            if character == "\"" { inQuotes.toggle() }
            if character == ",", !inQuotes { comma = index; break }
        }
        let head = comma.map { body[..<$0] } ?? body
        name = comma.map { String(body[body.index(after: $0)...].trimmingWhitespace()) } ?? ""
        let trimmedHead = head.trimmingWhitespace()
        let durationEnd = trimmedHead.firstIndex(where: { $0 == " " || $0 == "\t" }) ?? trimmedHead.endIndex
        let firstToken = trimmedHead[..<durationEnd]
        if firstToken.contains("=") {
            duration = ""
            attributes = Self.attributes(in: trimmedHead)
        } else {
            duration = String(firstToken)
            attributes = Self.attributes(in: trimmedHead[durationEnd...])
        }
    }

    /// `key="value"` and `key=value` pairs separated by spaces; keys lower-cased,
    /// the first of a repeated key kept.
    static func attributes(in text: Substring) -> [String: String] {
        var result: [String: String] = [:]
        var index = text.startIndex
        func skipSpaces() {
            while index < text.endIndex, text[index] == " " || text[index] == "\t" { index = text.index(after: index) }
        }
        while true {
            skipSpaces()
            guard index < text.endIndex else { break }
            let keyStart = index
            while index < text.endIndex, text[index] != "=", text[index] != " ", text[index] != "\t" { index = text.index(after: index) }
            let key = text[keyStart..<index].lowercased()
            guard index < text.endIndex, text[index] == "=" else { continue }
            index = text.index(after: index)
            let value: Substring
            if index < text.endIndex, text[index] == "\"" {
                let valueStart = text.index(after: index)
                let valueEnd = text[valueStart...].firstIndex(of: "\"") ?? text.endIndex
                value = text[valueStart..<valueEnd]
                index = valueEnd < text.endIndex ? text.index(after: valueEnd) : valueEnd
            } else {
                let valueStart = index
                while index < text.endIndex, text[index] != " ", text[index] != "\t" { index = text.index(after: index) }
                value = text[valueStart..<index]
            }
            if !key.isEmpty, result[key] == nil { result[key] = String(value) }
        }
        return result
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    func trimmingWhitespace() -> SubSequence {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return self[endIndex...]
        }
        return self[start...last]
    }
}
