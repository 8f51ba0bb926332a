/// Hands out host ports from `PORT_RANGE_HOST` without collisions.
///
/// The ports in use come from the store and from container labels at start-up,
/// so a restart never hands out a port an existing engine still holds.
public struct PortAllocator: Sendable {
    public let range: ClosedRange<Int>
    public private(set) var inUse: Set<Int>

    public init(range: ClosedRange<Int>, inUse: Set<Int> = []) {
        self.range = range
        self.inUse = inUse
    }

    /// The lowest free port, now marked in use; nil when the range is exhausted.
    public mutating func allocate() -> Int? {
        guard let port = range.first(where: { !inUse.contains($0) }) else { return nil }
        inUse.insert(port)
        return port
    }

    /// Marks `port` in use (found on an existing container); false if it already was.
    @discardableResult
    public mutating func claim(_ port: Int) -> Bool { inUse.insert(port).inserted }

    public mutating func release(_ port: Int) { inUse.remove(port) }

    /// Parses `19000-19999` (the orchestrator's format); nil when malformed.
    public static func parseRange(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let low = Int(parts[0]), let high = Int(parts[1]),
              (1...65_535).contains(low), (1...65_535).contains(high), low <= high else { return nil }
        return low...high
    }
}

import Foundation
