/// The stream order pushed to a Dispatcharr channel: a pure function, so that exactly
/// one PATCH goes out per real change.
public enum StreamOrderPlan {
    /// Every stream the channel has, in the order to push, or nil when that is `current`.
    ///
    /// Order: the working AceStream streams by score (`ranked`, best first), then the
    /// AceStream streams with no measurement yet (in `current` order), then the failed
    /// AceStream streams (`failed`, in the order given), then the other streams (`others`)
    /// in their current order. Only ids in `current` appear, each once; an id both ranked
    /// and failed counts as ranked. An id of `current` named in no list counts as an
    /// AceStream stream without a measurement.
    public static func streams(current: [Int], ranked aceStreams: [Int], failed: [Int], others: [Int]) -> [Int]? {
        let present = Set(current)
        var placed = Set<Int>()
        var order: [Int] = []
        func place(_ id: Int) {
            if present.contains(id), placed.insert(id).inserted { order.append(id) }
        }
        let otherSet = Set(others)
        let failedSet = Set(failed)
        aceStreams.filter { !otherSet.contains($0) }.forEach(place)
        current.filter { !otherSet.contains($0) && !failedSet.contains($0) }.forEach(place)
        failed.filter { !otherSet.contains($0) }.forEach(place)
        current.filter { otherSet.contains($0) }.forEach(place)
        // `current` itself may repeat an id (it should not); keep the plan free of repeats.
        return order == current ? nil : order
    }
}
