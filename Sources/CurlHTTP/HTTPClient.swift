import CSupport
import Foundation
import Synchronization

/// The control plane's HTTP client: every request runs on a curl multi handle
/// driven by a thread the client owns, and callers only suspend.
///
/// A peer that is slow or hung must never hold a thread of Swift concurrency's
/// cooperative pool (two threads on these machines, shared with everything else).
/// So the waiting happens on this thread, and because it drives a multi handle,
/// one slow request (a 30 s container stop) does not delay the others. The multi
/// handle also keeps connections open between requests to the same peer.
/// Requests honour task cancellation. The relay does not use this client: its
/// loops drive their own multi handle, built from the same `CurlEasyHandle`.
public final class HTTPClient: Sendable {
    /// One client for the process's control plane, for callers that are not handed one.
    public static let shared = HTTPClient(name: "http-client")

    private let thread: TransferThread

    /// Starts a client whose thread is named `name` (15 characters at most show in top).
    public init(name: String) {
        thread = TransferThread(name: name)
    }

    deinit {
        thread.stop()
    }

    /// Sends `request` and waits for the complete answer or the reason there is none.
    public func send(_ request: HTTPRequest) async -> Result<HTTPResponse, HTTPClientError> {
        let exchange: Exchange
        do {
            exchange = Exchange(handle: try CurlEasyHandle(request))
        } catch {
            return .failure(error)
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                exchange.continuation = continuation
                thread.submit(exchange)
            }
        } onCancel: {
            exchange.cancel()
            thread.wake()
        }
    }

    /// Ends the thread; requests in flight and later ones fail with `cancelled`.
    public func shutdown() {
        thread.stop()
    }
}
