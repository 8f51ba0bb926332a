import CSupport
import Foundation
import Locking

/// The thread of one `HTTPClient`, running its exchanges on a curl multi handle.
final class TransferThread: Sendable {
    /// The curl multi handle. Only the thread uses it, except `curl_multi_wakeup`,
    /// which libcurl documents as callable from any thread.
    private let multi: MultiHandle
    private let inbox = Locked(Inbox())

    private struct Inbox {
        var queued: [Exchange] = []
        var stopping = false
    }

    /// The curl handle, marked Sendable: the thread owns it and others only wake it.
    private struct MultiHandle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    /// Starts the thread. It runs until `stop()`, then releases the multi handle.
    init(name: String) {
        CurlLibrary.ensureInitialized()
        guard let pointer = curl_multi_init() else { fatalError("curl_multi_init failed: out of memory") }
        multi = MultiHandle(pointer: pointer)
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    deinit {
        curl_multi_cleanup(multi.pointer)
    }

    /// Queues `exchange`; its continuation is resumed on this thread when it ends.
    func submit(_ exchange: Exchange) {
        let accepted = inbox.withLock { inbox in
            if inbox.stopping { return false }
            inbox.queued.append(exchange)
            return true
        }
        if accepted { wake() } else { exchange.finish(.failure(.cancelled)) }
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
        var active: [UnsafeMutableRawPointer: Exchange] = [:]
        while true {
            let (arrivals, stopping) = inbox.withLock { inbox in
                defer { inbox.queued.removeAll() }
                return (inbox.queued, inbox.stopping)
            }
            for exchange in arrivals {
                if exchange.isCancelled || stopping {
                    exchange.finish(.failure(.cancelled))
                } else {
                    active[exchange.handle.pointer] = exchange
                    curl_multi_add_handle(multi.pointer, exchange.handle.pointer)
                }
            }
            for (easy, exchange) in active where exchange.isCancelled || stopping {
                curl_multi_remove_handle(multi.pointer, easy)
                active[easy] = nil
                exchange.finish(.failure(.cancelled))
            }
            if stopping { return }

            var running: Int32 = 0
            curl_multi_perform(multi.pointer, &running)
            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi.pointer, &queued) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                      let exchange = active.removeValue(forKey: easy) else { continue }
                let code = message.pointee.data.result
                curl_multi_remove_handle(multi.pointer, easy)
                exchange.finish(exchange.handle.result(for: code))
            }
            // Returns early on socket activity, curl's own timers, or `wake()`.
            curl_multi_poll(multi.pointer, nil, 0, 1000, nil)
        }
    }
}
