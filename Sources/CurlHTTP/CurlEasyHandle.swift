import CSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One curl easy handle, set up from an `HTTPRequest` by the one set-up function
/// every HTTP client in acerelay uses, with the response buffered (bounded) or
/// streamed to a sink.
///
/// What every handle gets whoever builds it: only http and https, for the first
/// request and for redirects; redirects off unless the request asks; connect and
/// total time limits; bounded body and header sizes; no signals (several threads
/// run curl); identity encoding.
///
/// It is driven by one multi handle at a time (the relay's loop-driven multi or
/// `HTTPClient`'s thread), which alone touches it until the transfer ends; that
/// hand-over is why it is `@unchecked Sendable`. It must outlive its transfer,
/// because curl's callbacks reach it through an unretained pointer.
public final class CurlEasyHandle: @unchecked Sendable {
    /// The curl handle, for `curl_multi_add_handle` and `curl_multi_remove_handle`.
    public let pointer: UnsafeMutableRawPointer
    /// The URL requested, for logs.
    public let url: String
    /// Streaming sink: every body chunk goes here and none is kept; returning false aborts.
    /// When nil the body is buffered, up to the request's `maxBodyBytes`; once set,
    /// the size limit no longer applies (a live stream has no end).
    public var onData: ((UnsafeRawBufferPointer) -> Bool)? {
        didSet {
            if onData != nil { csupport_curl_easy_setopt_long(pointer, CURLOPT_MAXFILESIZE_LARGE, 0) }
        }
    }
    /// Set to make the next write callback abort the transfer (for a removal curl
    /// forbids while it is calling back).
    public var abortRequested = false
    /// The buffered body so far (empty for a streaming transfer, and after `bodyTooLarge`).
    public private(set) var body: [UInt8] = []

    private enum Exceeded {
        case body, headers
    }

    private let maxBodyBytes: Int
    private let maxHeaderBytes: Int
    private var headerBytes = 0
    private var headers: [(name: String, value: String)] = []
    private var exceeded: Exceeded?
    private var headerList: UnsafeMutablePointer<curl_slist>?
    /// curl writes its error text here and keeps the pointer, so the memory is owned.
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    /// The request body when it streams from a file; closed in deinit.
    private var uploadFile: Int32 = -1

    /// Sets up a handle for `request`.
    /// - Throws: `HTTPClientError.unreadableFile` when the body file cannot be opened.
    public init(_ request: HTTPRequest) throws(HTTPClientError) {
        CurlLibrary.ensureInitialized()
        guard let easy = curl_easy_init() else { fatalError("curl_easy_init failed: out of memory") }
        pointer = easy
        url = request.url
        maxBodyBytes = request.maxBodyBytes
        maxHeaderBytes = request.maxHeaderBytes
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        // Every stored property is set: a throw from here runs deinit, which frees the handle.
        try configure(easy, for: request)
    }

    deinit {
        curl_easy_cleanup(pointer)
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
        if uploadFile >= 0 { close(uploadFile) }
    }

    /// The one set-up every handle gets.
    private func configure(_ easy: UnsafeMutableRawPointer, for request: HTTPRequest) throws(HTTPClientError) {
        let me = Unmanaged.passUnretained(self).toOpaque()
        csupport_curl_easy_setopt_string(easy, CURLOPT_URL, request.url)
        // Without this a URL (or a redirect) could reach file://, gopher://, dict://
        // and curl's other protocols; an allow-list that silently failed to apply
        // would be worse than stopping, hence the precondition (curl 7.85 or later).
        precondition(csupport_curl_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK
                     && csupport_curl_easy_setopt_string(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK,
                     "libcurl 7.85 or later is needed to restrict requests to http and https")
        csupport_curl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, request.maxRedirects > 0 ? 1 : 0)
        if request.maxRedirects > 0 { csupport_curl_easy_setopt_long(easy, CURLOPT_MAXREDIRS, request.maxRedirects) }
        if let path = request.unixSocketPath {
            csupport_curl_easy_setopt_string(easy, CURLOPT_UNIX_SOCKET_PATH, path)
        }
        // Several threads run curl in this process; signals must not be used for timeouts.
        csupport_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        csupport_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, request.connectTimeout.curlMilliseconds)
        csupport_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, request.timeout?.curlMilliseconds ?? 0)
        if let slow = request.lowSpeedLimit {
            csupport_curl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, slow.bytesPerSecond)
            csupport_curl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, slow.seconds)
        }
        if request.failOnHTTPError { csupport_curl_easy_setopt_long(easy, CURLOPT_FAILONERROR, 1) }
        csupport_curl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1)
        if !request.reuseConnection { csupport_curl_easy_setopt_long(easy, CURLOPT_FORBID_REUSE, 1) }
        // An idle connection kept in a multi handle's cache is closed once it has
        // been idle this long (curl's default is 118 s): polls a second apart still
        // reuse theirs, but an engine whose streams ended is let go within seconds.
        csupport_curl_easy_setopt_long(easy, CURLOPT_MAXAGE_CONN, HTTPRequest.idleConnectionSeconds)
        csupport_curl_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, 64 * 1024)
        if let agent = request.userAgent { csupport_curl_easy_setopt_string(easy, CURLOPT_USERAGENT, agent) }
        // Engines and proxies in the field ask for identity; never let curl negotiate compression.
        csupport_curl_easy_setopt_string(easy, CURLOPT_ACCEPT_ENCODING, "identity")
        // A body announced larger than the limit fails before any of it is read.
        csupport_curl_easy_setopt_long(easy, CURLOPT_MAXFILESIZE_LARGE, request.maxBodyBytes)
        csupport_curl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        csupport_curl_easy_setopt_data_cb(easy, CURLOPT_WRITEFUNCTION) { pointer, size, count, userdata in
            guard let pointer, let userdata else { return 0 }
            let handle = Unmanaged<CurlEasyHandle>.fromOpaque(userdata).takeUnretainedValue()
            return handle.received(UnsafeRawBufferPointer(start: pointer, count: size * count))
        }
        csupport_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, me)
        csupport_curl_easy_setopt_data_cb(easy, CURLOPT_HEADERFUNCTION) { pointer, size, count, userdata in
            guard let pointer, let userdata else { return 0 }
            let handle = Unmanaged<CurlEasyHandle>.fromOpaque(userdata).takeUnretainedValue()
            return handle.receivedHeader(UnsafeRawBufferPointer(start: pointer, count: size * count))
        }
        csupport_curl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, me)

        // A client sends `Expect: 100-continue` before large bodies and waits for
        // the go-ahead; the servers we talk to read the body anyway, so skip the round trip.
        var list = curl_slist_append(nil, "Expect:")
        for field in request.headers { list = curl_slist_append(list, "\(field.name): \(field.value)") }
        switch request.method {
        case .get:
            break
        case .head:
            csupport_curl_easy_setopt_long(easy, CURLOPT_NOBODY, 1)
        case .post:
            csupport_curl_easy_setopt_long(easy, CURLOPT_POST, 1)
        case .put, .patch, .delete:
            // The method string replaces the POST a body sets below; the body still goes out.
            csupport_curl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, request.method.rawValue)
        }
        switch request.body {
        case .empty:
            if request.method == .post {
                // Without a body source curl would read the POST body from stdin.
                csupport_curl_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, 0)
                csupport_curl_easy_setopt_string(easy, CURLOPT_COPYPOSTFIELDS, "")
            }
        case .bytes(let bytes, let contentType):
            list = curl_slist_append(list, "Content-Type: \(contentType)")
            csupport_curl_easy_setopt_long(easy, CURLOPT_POST, 1)
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
            csupport_curl_easy_setopt_long(easy, CURLOPT_POST, 1)
            // curl_off_t is `long` on the 64-bit Linux targets acerelay supports.
            csupport_curl_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE_LARGE, Int(info.st_size))
            csupport_curl_easy_setopt_data_cb(easy, CURLOPT_READFUNCTION) { pointer, size, count, userdata in
                guard let pointer, let userdata else { return Int(CURL_READFUNC_ABORT) }
                let handle = Unmanaged<CurlEasyHandle>.fromOpaque(userdata).takeUnretainedValue()
                return handle.readUpload(into: UnsafeMutableRawPointer(pointer), capacity: size * count)
            }
            csupport_curl_easy_setopt_pointer(easy, CURLOPT_READDATA, me)
        }
        headerList = list
        csupport_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list)
    }

    /// curl's verdict on this handle, as the one outcome type.
    public func result(for code: CURLcode) -> Result<HTTPResponse, HTTPClientError> {
        if code == CURLE_OK {
            var status = 0
            csupport_curl_easy_getinfo_long(pointer, CURLINFO_RESPONSE_CODE, &status)
            return .success(HTTPResponse(status: status, headers: headers, body: body))
        }
        return .failure(error(for: code))
    }

    private func error(for code: CURLcode) -> HTTPClientError {
        var detail = String(validatingCString: errorBuffer) ?? ""
        if detail.isEmpty { detail = String(cString: curl_easy_strerror(code)) }
        var osErrno = 0
        csupport_curl_easy_getinfo_long(pointer, CURLINFO_OS_ERRNO, &osErrno)
        // curl's connect messages name "localhost port 80" for a unix socket, which
        // is not where it connected; the socket's errno says what went wrong.
        let systemReason = osErrno != 0 ? String(cString: strerror(Int32(osErrno))).lowercased() : nil
        switch code {
        case CURLE_FILESIZE_EXCEEDED:
            return .bodyTooLarge(limit: maxBodyBytes)
        case CURLE_WRITE_ERROR where exceeded == .body:
            return .bodyTooLarge(limit: maxBodyBytes)
        case CURLE_WRITE_ERROR where exceeded == .headers:
            return .headersTooLarge(limit: maxHeaderBytes)
        case CURLE_UNSUPPORTED_PROTOCOL:
            return .protocolNotAllowed(reason: detail)
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return .couldNotConnect(reason: systemReason ?? detail)
        case CURLE_OPERATION_TIMEDOUT:
            return .timedOut(reason: detail)
        default:
            return .other(code: Int(code.rawValue), message: systemReason ?? detail)
        }
    }

    private func received(_ chunk: UnsafeRawBufferPointer) -> Int {
        if abortRequested { return 0 }
        if let onData { return onData(chunk) ? chunk.count : 0 }
        if body.count + chunk.count > maxBodyBytes {
            exceeded = .body
            // Give back what arrived now rather than when the handle goes.
            body = []
            return 0
        }
        body.append(contentsOf: chunk)
        return chunk.count
    }

    private func receivedHeader(_ line: UnsafeRawBufferPointer) -> Int {
        headerBytes += line.count
        if headerBytes > maxHeaderBytes {
            exceeded = .headers
            return 0
        }
        let text = String(decoding: line, as: UTF8.self)
        if text.hasPrefix("HTTP/") {
            // A new response (after a redirect or an interim 1xx): only the last one's fields count.
            headers.removeAll()
        } else if let colon = text.firstIndex(of: ":") {
            let name = String(text[..<colon])
            let value = text[text.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
            headers.append((name, String(value)))
        }
        return line.count
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
