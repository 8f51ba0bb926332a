import CSupport
#if canImport(Glibc)
import Glibc
#endif

/// Prepares libcurl once per process, before any thread uses it.
enum CurlGlobal {
    static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK
}

/// How one transfer ended.
struct CurlOutcome {
    /// CURLE_OK for a complete response; anything else is a transport or HTTP error.
    let code: CURLcode
    /// HTTP status, 0 when no response head arrived.
    let httpStatus: Int
    /// curl's one-line explanation, for logs and error bodies.
    let message: String

    var succeeded: Bool { code == CURLE_OK }
}

/// One HTTP GET on a `CurlMulti`. Either buffered (the body is collected, up to a
/// limit) or streaming (each chunk goes to `onData` and is not kept).
final class CurlTransfer {
    fileprivate let easy: UnsafeMutableRawPointer
    fileprivate var onData: ((UnsafeRawBufferPointer) -> Bool)?
    fileprivate var onComplete: ((CurlOutcome) -> Void)?
    fileprivate var bodyLimit: Int
    fileprivate(set) var body: [UInt8] = []
    fileprivate var abortRequested = false
    /// curl writes its error text here; owned memory, because curl keeps the pointer.
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    let url: String

    /// - Parameters:
    ///   - timeout: total time limit in seconds; 0 for none (streams).
    ///   - bodyLimit: bytes kept for a buffered transfer; exceeding it fails the transfer.
    init(url: String, connectTimeout: Double, timeout: Double, userAgent: String, bodyLimit: Int = 1 << 20) {
        precondition(CurlGlobal.initialized, "curl_global_init failed")
        self.url = url
        self.bodyLimit = bodyLimit
        easy = curl_easy_init()
        csupport_curl_easy_setopt_string(easy, CURLOPT_URL, url)
        csupport_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        csupport_curl_easy_setopt_long(easy, CURLOPT_FAILONERROR, 1)
        csupport_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Int(connectTimeout * 1000))
        csupport_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Int(timeout * 1000))
        csupport_curl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1)
        csupport_curl_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, 64 * 1024)
        csupport_curl_easy_setopt_string(easy, CURLOPT_USERAGENT, userAgent)
        // Engines and proxies in the field ask for identity; never let curl negotiate compression.
        csupport_curl_easy_setopt_string(easy, CURLOPT_ACCEPT_ENCODING, "identity")
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        csupport_curl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        csupport_curl_easy_setopt_data_cb(easy, CURLOPT_WRITEFUNCTION) { ptr, size, count, userdata in
            guard let ptr, let userdata else { return 0 }
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(userdata).takeUnretainedValue()
            let bytes = size * count
            if transfer.abortRequested { return 0 }
            let chunk = UnsafeRawBufferPointer(start: ptr, count: bytes)
            if let onData = transfer.onData {
                return onData(chunk) ? bytes : 0
            }
            if transfer.body.count + bytes > transfer.bodyLimit { return 0 }
            transfer.body.append(contentsOf: chunk)
            return bytes
        }
        csupport_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        curl_easy_cleanup(easy)
        errorBuffer.deallocate()
    }

    fileprivate func outcome(_ code: CURLcode) -> CurlOutcome {
        var status = 0
        csupport_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        let detail = String(validatingCString: errorBuffer) ?? ""
        let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        return CurlOutcome(code: code, httpStatus: status, message: code == CURLE_OK ? "ok" : message)
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
        precondition(CurlGlobal.initialized, "curl_global_init failed")
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

    /// Number of transfers still running.
    var activeCount: Int { active.count }

    /// Starts `transfer`. `onData` (streaming) returns false to abort; `onComplete` runs exactly once.
    func start(_ transfer: CurlTransfer,
               onData: ((UnsafeRawBufferPointer) -> Bool)? = nil,
               onComplete: @escaping (CurlOutcome) -> Void) {
        transfer.onData = onData
        transfer.onComplete = onComplete
        active[transfer.easy] = transfer
        curl_multi_add_handle(multi, transfer.easy)
    }

    /// Stops `transfer` without calling its completion handler.
    func cancel(_ transfer: CurlTransfer) {
        guard active[transfer.easy] != nil else { return }
        transfer.onComplete = nil
        if dispatching {
            transfer.abortRequested = true
            deferredCancels.append(transfer)
            return
        }
        active[transfer.easy] = nil
        curl_multi_remove_handle(multi, transfer.easy)
        transfer.onData = nil
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
            transfer.onData = nil
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
            transfer.onData = nil
            completion?(outcome)
        }
    }
}
