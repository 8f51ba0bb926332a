import Synchronization

/// One request in flight: its handle and who waits for it.
///
/// Built on the caller's thread, then handed to the `TransferThread`, which alone
/// touches it until it calls `finish`. Only `cancel()` crosses threads, through an
/// atomic flag. That hand-over is why this is `@unchecked Sendable`.
final class Exchange: @unchecked Sendable {
    let handle: CurlEasyHandle
    var continuation: CheckedContinuation<Result<HTTPResponse, HTTPClientError>, Never>?
    private let cancelRequested = Atomic<Bool>(false)

    init(handle: CurlEasyHandle) { self.handle = handle }

    /// Asks the transfer thread to abandon this exchange. Safe from any thread.
    func cancel() { cancelRequested.store(true, ordering: .releasing) }

    var isCancelled: Bool { cancelRequested.load(ordering: .acquiring) }

    /// Resumes the waiting caller; later calls do nothing.
    func finish(_ result: Result<HTTPResponse, HTTPClientError>) {
        continuation?.resume(returning: result)
        continuation = nil
    }
}
