import Foundation

/// The URL-safe name of a channel: lower-case ASCII letters and digits joined
/// by single dashes, transliterated from other scripts (`"Первый канал HD"` →
/// `"pervyj-kanal-hd"`, `"Canal+ Sport 1"` → `"canal-sport-1"`).
///
/// A name with nothing left after that (only symbols) becomes `"channel-"`
/// followed by eight hex digits of a hash of its UTF-8, so distinct names stay
/// distinct and the same name always gives the same slug.
public struct ChannelSlug: Hashable, Sendable, CustomStringConvertible {
    /// The slug text.
    public let value: String

    /// The slug of a channel name.
    public init(_ name: String) {
        value = Self.make(name)
    }

    public var description: String { value }

    private static func make(_ name: String) -> String {
    let latin = name.applyingTransform(.toLatin, reverse: false) ?? name
    let plain = latin.applyingTransform(.stripDiacritics, reverse: false) ?? latin
    var slug = ""
    var pendingDash = false
    for scalar in plain.lowercased().unicodeScalars {
        let isAlphanumeric = ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
        if isAlphanumeric {
            if pendingDash && !slug.isEmpty { slug.append("-") }
            slug.unicodeScalars.append(scalar)
            pendingDash = false
        } else if scalar != "'" && scalar != "’" {
            // Apostrophes join ("Children's" → "childrens"); everything else separates.
            pendingDash = true
        }
    }
    if !slug.isEmpty { return slug }
    var hash: UInt32 = 2_166_136_261
    for byte in name.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
    return "channel-" + String(hash, radix: 16).leftPadded(to: 8)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
