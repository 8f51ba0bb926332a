import CSupport
import Foundation
import Synchronization

/// A thread of its own that runs every transfer of one `DockerClient` on a curl
/// multi handle.
///
/// A daemon that is slow or hung must never hold a thread of Swift concurrency's
/// cooperative pool (two threads on these machines, shared with everything else).
/// So callers only suspend; this thread does the blocking waits, and because it
/// drives a multi handle, one slow call (a 30 s stop) does not delay the others.
/// The multi handle also keeps connections to the daemon open between calls.
final class TransferThread: Sendable {
    /// The curl multi handle. Only the thread uses it, except `curl_multi_wakeup`,
    /// which libcurl documents as callable from any thread.
    private let multi: MultiHandle
    private let inbox = Mutex(Inbox())

    private struct Inbox {
        var queued: [CurlTransfer] = []
        var stopping = false
    }

    /// The curl handle, marked Sendable: the thread owns it and others only wake it.
    private struct MultiHandle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    /// Starts the thread. It runs until `stop()`, then releases the multi handle.
    init(name: String) {
        precondition(CurlLibrary.initialized, "curl_global_init failed")
        guard let pointer = curl_multi_init() else { fatalError("curl_multi_init failed: out of memory") }
        multi = MultiHandle(pointer: pointer)
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    deinit {
        curl_multi_cleanup(multi.pointer)
    }

    /// Queues `transfer`; its continuation is resumed on this thread when it ends.
    func submit(_ transfer: CurlTransfer) {
        let accepted = inbox.withLock { inbox in
            if inbox.stopping { return false }
            inbox.queued.append(transfer)
            return true
        }
        if accepted { wake() } else { transfer.finish(.cancelled) }
    }

    /// Makes the thread look at its inbox and at cancellations now.
    func wake() {
        curl_multi_wakeup(multi.pointer)
    }

    /// Ends the thread once it has abandoned whatever is still running.
    func stop() {
        inbox.withLock { $0.stopping = true }
        wake()
    }

    private func run() {
        var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]
        while true {
            let (arrivals, stopping) = inbox.withLock { inbox in
                defer { inbox.queued.removeAll() }
                return (inbox.queued, inbox.stopping)
            }
            for transfer in arrivals {
                if transfer.isCancelled || stopping {
                    transfer.finish(.cancelled)
                } else {
                    active[transfer.easy] = transfer
                    curl_multi_add_handle(multi.pointer, transfer.easy)
                }
            }
            for (easy, transfer) in active where transfer.isCancelled || stopping {
                curl_multi_remove_handle(multi.pointer, easy)
                active[easy] = nil
                transfer.finish(.cancelled)
            }
            if stopping { return }

            var running: Int32 = 0
            curl_multi_perform(multi.pointer, &running)
            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi.pointer, &queued) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                      let transfer = active.removeValue(forKey: easy) else { continue }
                let code = message.pointee.data.result
                curl_multi_remove_handle(multi.pointer, easy)
                transfer.finish(code: code)
            }
            // Returns early on socket activity, curl's own timers, or `wake()`.
            curl_multi_poll(multi.pointer, nil, 0, 1000, nil)
        }
    }
}
