import CSupport
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Prepares libcurl once per process, before any thread uses it.
enum CurlLibrary {
    static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK
}

/// How a transfer ended, before the client gives it Engine API meaning.
enum TransferResult: Sendable {
    /// The daemon answered (with any status).
    case answered(EngineResponse)
    /// No complete answer: curl's code, the socket errno behind it, curl's text.
    case failed(code: UInt32, osErrno: Int32, message: String)
    /// The caller's task was cancelled.
    case cancelled
}

/// One Engine API exchange on its own curl easy handle.
///
/// Built on the caller's thread, then handed to the `TransferThread`, which alone
/// touches it until it calls `finish`. Only `cancel()` crosses threads, through
/// an atomic flag. That hand-over is why this is `@unchecked Sendable`.
final class CurlTransfer: @unchecked Sendable {
    let easy: UnsafeMutableRawPointer
    private var headers: UnsafeMutablePointer<curl_slist>?
    /// curl writes its error text here and keeps the pointer, so the memory is owned.
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    /// The request body when it streams from a file; closed in deinit.
    private var uploadFile: Int32 = -1
    private var response: [UInt8] = []
    /// The largest body kept; the daemon's lists are far below this.
    private let responseLimit = 32 << 20
    private var responseTooLarge = false
    private let cancelRequested = Atomic<Bool>(false)
    private var continuation: CheckedContinuation<TransferResult, Never>?

    /// Prepares `request` for `host`.
    /// - Throws: `DockerError.unreadableFile` when the body file cannot be opened.
    init(_ request: EngineRequest, host: DockerHost, apiPrefix: String, connectTimeout: Duration) throws(DockerError) {
        precondition(CurlLibrary.initialized, "curl_global_init failed")
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        guard let easy = curl_easy_init() else { fatalError("curl_easy_init failed: out of memory") }
        self.easy = easy
        let me = Unmanaged.passUnretained(self).toOpaque()

        csupport_curl_easy_setopt_string(easy, CURLOPT_URL, host.baseURL + apiPrefix + request.target)
        if case .unixSocket(let path) = host {
            csupport_curl_easy_setopt_string(easy, CURLOPT_UNIX_SOCKET_PATH, path)
        }
        // Several threads run curl in this process; signals must not be used for timeouts.
        csupport_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        csupport_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, connectTimeout.milliseconds)
        csupport_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, request.timeout.milliseconds)
        csupport_curl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        csupport_curl_easy_setopt_data_cb(easy, CURLOPT_WRITEFUNCTION) { pointer, size, count, userdata in
            guard let pointer, let userdata else { return 0 }
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(userdata).takeUnretainedValue()
            return transfer.received(UnsafeRawBufferPointer(start: pointer, count: size * count))
        }
        csupport_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, me)

        // A client sends `Expect: 100-continue` before large bodies and waits for
        // the go-ahead; the daemon reads the body anyway, so skip the round trip.
        var list = curl_slist_append(nil, "Expect:")
        switch request.method {
        case .get:
            break
        case .delete:
            csupport_curl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, "DELETE")
        case .post:
            csupport_curl_easy_setopt_long(easy, CURLOPT_POST, 1)
        }
        switch request.body {
        case .empty:
            if request.method == .post {
                // Without a body source curl would read the POST body from stdin.
                csupport_curl_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, 0)
                csupport_curl_easy_setopt_string(easy, CURLOPT_COPYPOSTFIELDS, "")
            }
        case .json(let bytes):
            list = curl_slist_append(list, "Content-Type: application/json")
            csupport_curl_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, bytes.count)
            bytes.withUnsafeBytes { raw in
                // COPYPOSTFIELDS copies now, so the array need not outlive this call.
                _ = csupport_curl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress))
            }
        case .file(let path, let contentType):
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            var info = stat()
            guard fd >= 0, fstat(fd, &info) == 0 else {
                let reason = String(cString: strerror(errno))
                if fd >= 0 { close(fd) }
                curl_slist_free_all(list)
                throw .unreadableFile(path: path, reason: reason)
            }
            uploadFile = fd
            list = curl_slist_append(list, "Content-Type: \(contentType)")
            // curl_off_t is `long` on the 64-bit Linux targets acerelay supports.
            csupport_curl_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE_LARGE, Int(info.st_size))
            csupport_curl_easy_setopt_data_cb(easy, CURLOPT_READFUNCTION) { pointer, size, count, userdata in
                guard let pointer, let userdata else { return Int(CURL_READFUNC_ABORT) }
                let transfer = Unmanaged<CurlTransfer>.fromOpaque(userdata).takeUnretainedValue()
                return transfer.readUpload(into: UnsafeMutableRawPointer(pointer), capacity: size * count)
            }
            csupport_curl_easy_setopt_pointer(easy, CURLOPT_READDATA, me)
        }
        headers = list
        csupport_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list)
    }

    deinit {
        curl_easy_cleanup(easy)
        curl_slist_free_all(headers)
        errorBuffer.deallocate()
        if uploadFile >= 0 { close(uploadFile) }
    }

    /// Registers who waits for the result; called once, before the transfer is queued.
    func setContinuation(_ continuation: CheckedContinuation<TransferResult, Never>) {
        self.continuation = continuation
    }

    /// Asks the transfer thread to abandon this transfer. Safe from any thread.
    func cancel() {
        cancelRequested.store(true, ordering: .releasing)
    }

    var isCancelled: Bool { cancelRequested.load(ordering: .acquiring) }

    /// Resumes the waiting caller with curl's verdict on this handle.
    func finish(code: CURLcode) {
        if code == CURLE_OK {
            var status = 0
            csupport_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            finish(.answered(EngineResponse(status: status, body: response)))
            return
        }
        var osErrno = 0
        csupport_curl_easy_getinfo_long(easy, CURLINFO_OS_ERRNO, &osErrno)
        var message = String(validatingCString: errorBuffer) ?? ""
        if message.isEmpty { message = String(cString: curl_easy_strerror(code)) }
        if code == CURLE_WRITE_ERROR && responseTooLarge {
            message = "the answer is larger than \(responseLimit >> 20) MiB"
        }
        finish(.failed(code: code.rawValue, osErrno: Int32(osErrno), message: message))
    }

    /// Resumes the waiting caller; later calls do nothing.
    func finish(_ result: TransferResult) {
        continuation?.resume(returning: result)
        continuation = nil
    }

    private func received(_ chunk: UnsafeRawBufferPointer) -> Int {
        if response.count + chunk.count > responseLimit {
            responseTooLarge = true
            return 0
        }
        response.append(contentsOf: chunk)
        return chunk.count
    }

    private func readUpload(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int {
        while true {
            let n = read(uploadFile, buffer, capacity)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            return Int(CURL_READFUNC_ABORT)
        }
    }
}

extension Duration {
    /// Whole milliseconds, rounded up so a tiny positive limit never becomes "none" (0).
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        let ms = Int(seconds) * 1000 + Int((attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
        return max(ms, 1)
    }
}
