/// Orders a channel's sources best first, without flapping.
///
/// Sources that work are ranked by score, ties keeping their previous order;
/// failed sources go last in their previous order. The current first source
/// keeps first place unless it failed, or another beats it by at least
/// `margin` points — so two sources scoring 71 and 73 do not swap on every
/// measurement, and Dispatcharr is told only of real changes.
public struct SourceOrdering: Sendable {
    public var margin: Int

    public init(margin: Int) { self.margin = margin }

    /// One source as the ordering sees it.
    public struct Entry: Sendable, Equatable {
        public var contentID: String
        /// nil until the source was measured once.
        public var score: Int?
        public var failed: Bool

        public init(contentID: String, score: Int?, failed: Bool) {
            self.contentID = contentID
            self.score = score
            self.failed = failed
        }
    }

    /// The new order of `entries`, given in their current order.
    public func order(_ entries: [Entry]) -> [Entry] {
        let working = entries.enumerated().filter { !$0.element.failed }
        let failed = entries.filter(\.failed)
        // Unmeasured sources rank below measured ones that work, above failed ones.
        var ranked = working.sorted { a, b in
            let (sa, sb) = (a.element.score ?? -1, b.element.score ?? -1)
            return sa != sb ? sa > sb : a.offset < b.offset
        }.map(\.element)
        if let incumbent = entries.first, !incumbent.failed, let challenger = ranked.first,
           challenger.contentID != incumbent.contentID,
           (challenger.score ?? -1) < (incumbent.score ?? -1) + margin,
           let index = ranked.firstIndex(where: { $0.contentID == incumbent.contentID }) {
            ranked.remove(at: index)
            ranked.insert(incumbent, at: 0)
        }
        return ranked + failed
    }
}
