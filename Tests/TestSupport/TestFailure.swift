/// A test helper's failure, with a message that says what went wrong and where.
///
/// Every target used to carry its own copy of this struct under its own name
/// (`TestError`, `PanelTestError`, `ProbeTestError`, `StandInError`, ...); they
/// are kept as type aliases of this one so their call sites compile unchanged.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }
}
