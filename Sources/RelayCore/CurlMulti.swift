import CSupport
import CurlHTTP
#if canImport(Glibc)
import Glibc
#endif

/// Prepares libcurl once per process, before any loop uses it (one
/// `curl_global_init` for the whole process, in `CurlLibrary`).
enum CurlGlobal {
    static var initialized: Bool { CurlLibrary.initialized }
}

/// How one transfer ended.
struct CurlOutcome {
    /// The answer, or why there is none; an HTTP error status is a failure here.
    let result: Result<CurlHTTP.HTTPResponse, HTTPClientError>

    /// HTTP status, 0 when no response head arrived or the transfer failed.
    var httpStatus: Int {
        if case .success(let response) = result { return response.status }
        return 0
    }

    /// A one-line explanation, for logs and error bodies.
    var message: String {
        switch result {
        case .success: "ok"
        case .failure(let error): error.description
        }
    }

    var succeeded: Bool {
        if case .success = result { return true }
        return false
    }
}

/// One HTTP GET on a `CurlMulti`. Either buffered (the body is collected, up to a
/// limit) or streaming (each chunk goes to `onData` and is not kept). The handle
/// is set up by CurlHTTP like every other HTTP request of the process.
final class CurlTransfer {
    fileprivate let handle: CurlEasyHandle
    fileprivate var onComplete: ((CurlOutcome) -> Void)?
    let url: String

    fileprivate var easy: UnsafeMutableRawPointer { handle.pointer }
    /// The buffered body.
    var body: [UInt8] { handle.body }

    /// - Parameters:
    ///   - timeout: total time limit in seconds; 0 for none (streams).
    ///   - bodyLimit: bytes kept for a buffered transfer; exceeding it fails the transfer.
    init(url: String, connectTimeout: Double, timeout: Double, userAgent: String, bodyLimit: Int = 1 << 20) {
        self.url = url
        var request = HTTPRequest(
            url: url, connectTimeout: .milliseconds(Int(connectTimeout * 1000)),
            timeout: timeout > 0 ? .milliseconds(Int(timeout * 1000)) : nil,
            maxBodyBytes: bodyLimit, failOnHTTPError: true, userAgent: userAgent)
        // A hub calls its engine a few times in its whole life (getstream, playback,
        // stop): a connection kept in the loop's cache after `stop` would stay
        // open to the engine long after the hub is gone.
        request.reuseConnection = false
        do {
            handle = try CurlEasyHandle(request)
        } catch {
            preconditionFailure("a GET without a body cannot fail to set up: \(error)")
        }
    }

    fileprivate func outcome(_ code: CURLcode) -> CurlOutcome {
        CurlOutcome(result: handle.result(for: code))
    }
}

/// A libcurl multi handle driven by one event loop: curl's sockets become
/// `ev_io` watchers and its timeout an `ev_timer`, so every engine request of
/// the loop's hubs runs on the loop without threads.
final class CurlMulti {
    private let loop: EventLoop
    private let multi: UnsafeMutableRawPointer
    private var sockets: [Int32: IOWatcher] = [:]
    private var timer: TimerWatcher!
    private var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    /// True while curl is calling back into us; curl forbids removing handles then.
    private var dispatching = false
    private var deferredCancels: [CurlTransfer] = []

    init(loop: EventLoop) {
        CurlLibrary.ensureInitialized()
        self.loop = loop
        multi = curl_multi_init()
        timer = TimerWatcher(loop: loop) { [unowned self] in
            self.drive(socket: CURL_SOCKET_TIMEOUT, events: 0)
        }
        let me = Unmanaged.passUnretained(self).toOpaque()
        csupport_curl_multi_setopt_pointer(multi, CURLMOPT_SOCKETDATA, me)
        csupport_curl_multi_setopt_pointer(multi, CURLMOPT_TIMERDATA, me)
        csupport_curl_multi_setopt_socket_cb(multi) { _, socket, what, userp, _ in
            guard let userp else { return 0 }
            Unmanaged<CurlMulti>.fromOpaque(userp).takeUnretainedValue().updateSocket(socket, what: what)
            return 0
        }
        csupport_curl_multi_setopt_timer_cb(multi) { _, timeoutMs, userp in
            guard let userp else { return 0 }
            let me = Unmanaged<CurlMulti>.fromOpaque(userp).takeUnretainedValue()
            // Never call socket_action from here (curl forbids it): arm the loop timer instead.
            if timeoutMs < 0 { me.timer.cancel() } else { me.timer.schedule(after: Double(timeoutMs) / 1000) }
            return 0
        }
    }

    deinit {
        for transfer in active.values { curl_multi_remove_handle(multi, transfer.easy) }
        curl_multi_cleanup(multi)
    }

    /// Starts `transfer`. `onData` (streaming) returns false to abort; `onComplete` runs exactly once.
    func start(_ transfer: CurlTransfer,
               onData: ((UnsafeRawBufferPointer) -> Bool)? = nil,
               onComplete: @escaping (CurlOutcome) -> Void) {
        transfer.handle.onData = onData
        transfer.onComplete = onComplete
        active[transfer.easy] = transfer
        curl_multi_add_handle(multi, transfer.easy)
    }

    /// Stops `transfer` without calling its completion handler.
    func cancel(_ transfer: CurlTransfer) {
        guard active[transfer.easy] != nil else { return }
        transfer.onComplete = nil
        if dispatching {
            transfer.handle.abortRequested = true
            deferredCancels.append(transfer)
            return
        }
        active[transfer.easy] = nil
        curl_multi_remove_handle(multi, transfer.easy)
        transfer.handle.onData = nil
    }

    private func updateSocket(_ socket: Int32, what: Int32) {
        if what == CURL_POLL_REMOVE {
            sockets.removeValue(forKey: socket)?.stop()
            return
        }
        var events: Int32 = 0
        if what == CURL_POLL_IN || what == CURL_POLL_INOUT { events |= IOWatcher.read }
        if what == CURL_POLL_OUT || what == CURL_POLL_INOUT { events |= IOWatcher.write }
        if let watcher = sockets[socket] {
            watcher.watch(events)
        } else {
            let watcher = IOWatcher(loop: loop, fd: socket, events: events) { [unowned self] revents in
                var flags: Int32 = 0
                if revents & IOWatcher.read != 0 { flags |= CURL_CSELECT_IN }
                if revents & IOWatcher.write != 0 { flags |= CURL_CSELECT_OUT }
                self.drive(socket: socket, events: flags)
            }
            sockets[socket] = watcher
            watcher.start()
        }
    }

    private func drive(socket: Int32, events: Int32) {
        var running: Int32 = 0
        dispatching = true
        curl_multi_socket_action(multi, socket, events, &running)
        dispatching = false
        for transfer in deferredCancels where active[transfer.easy] != nil {
            active[transfer.easy] = nil
            curl_multi_remove_handle(multi, transfer.easy)
            transfer.handle.onData = nil
        }
        deferredCancels.removeAll(keepingCapacity: true)
        collectFinished()
    }

    private func collectFinished() {
        var queued: Int32 = 0
        while let message = curl_multi_info_read(multi, &queued) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                  let transfer = active.removeValue(forKey: easy) else { continue }
            let code = message.pointee.data.result
            curl_multi_remove_handle(multi, easy)
            let outcome = transfer.outcome(code)
            let completion = transfer.onComplete
            transfer.onComplete = nil
            transfer.handle.onData = nil
            completion?(outcome)
        }
    }
}
