import CSupport

/// libcurl's process-wide set-up, done once for every user of curl in the process.
///
/// `curl_global_init` is not thread-safe and must run before any other curl call;
/// a Swift global `let` is initialised exactly once, under the runtime's lock, on
/// first use, which gives both properties without a lock of our own.
public enum CurlLibrary {
    /// True once `curl_global_init` succeeded; evaluated (and curl initialised) on first read.
    public static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK

    /// Initialises libcurl if nothing did yet; stops the process if curl cannot start,
    /// since no HTTP request could ever be made.
    public static func ensureInitialized() {
        precondition(initialized, "curl_global_init failed: libcurl cannot start (out of memory or a broken TLS library)")
    }
}
